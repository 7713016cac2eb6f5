"""Model loading: the embedded default model, any local or cached Hugging Face model, tiny test models."""
