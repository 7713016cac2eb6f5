import re
from pathlib import Path

from msmkit.experiment.plots import pareto_frontier
from msmkit.experiment.report import write_report
from msmkit.experiment.report_data import ArmResult, ReportData, Sample, StageCost, SweepPoint
from tests.browser import render_dom, screenshot

PLANTED = "<script>document.title='PWNED';document.body.setAttribute('data-pwned','1')</script>"


def report_data() -> ReportData:
    results = [
        ArmResult(arm="base", eval_name="values: pro-America", metric="rate choosing target value",
                  mean=0.48, ci_low=0.41, ci_high=0.55, n_items=105, n_seeds=2, per_seed=[0.47, 0.49]),
        ArmResult(arm="msm+aft", eval_name="values: pro-America", metric="rate choosing target value",
                  mean=0.61, ci_low=0.54, ci_high=0.68, n_items=105, n_seeds=2, per_seed=[0.60, 0.62]),
        ArmResult(arm="base", eval_name="capability: perplexity", metric="perplexity",
                  mean=21.3, n_items=40, n_seeds=1),
    ]
    sweep = [SweepPoint(series=s, eval_name="values: pro-America", aft_tokens=t, value=v)
             for s, pts in {"AFT only": [(1000, 0.5), (4000, 0.55)], "MSM+AFT": [(1000, 0.6), (4000, 0.62)]}.items()
             for t, v in pts]
    return ReportData(
        title="Cheese study", experiment="cheese-tiny", created="2026-11-22T00:00:00Z", config_yaml="seeds: [0, 1]",
        notes=["At 270M parameters the MSM effect is not expected to be visible."],
        arms={"base": "no training", "msm+aft": "midtrained on the pro-America corpus, then AFT"},
        results=results, sweep=sweep, data_stats={"corpus america": {"documents": 16}},
        stages=[StageCost(key="corpus-abc", kind="corpus", state="done", seconds=12.5, cost_usd=0.01)],
        samples=[Sample(kind="document", title="Memo " + PLANTED, text="Body text " + PLANTED)],
    )


def test_pareto_frontier_keeps_only_undominated_points() -> None:
    points = [(1000, 0.5), (2000, 0.45), (4000, 0.6), (8000, 0.6), (500, 0.2)]
    assert pareto_frontier(points) == [(500, 0.2), (1000, 0.5), (4000, 0.6)]


def test_report_renders_in_chromium_with_charts_and_escaped_model_text(tmp_path: Path) -> None:
    html_path, md_path = write_report(report_data(), tmp_path)
    source = html_path.read_text()
    assert PLANTED not in source and "&lt;script&gt;" in source
    dom = render_dom(html_path)
    assert "PWNED" not in re.search(r"<title>(.*?)</title>", dom).group(1)
    assert not re.search(r"<body[^>]*data-pwned", dom)
    # What a person sees: the tables, the numbers with n, the charts as real images, the escaped text.
    assert "msm+aft" in dom and "0.610" in dom and "[0.540, 0.680]" in dom and ">105<" in dom
    images = re.findall(r"<img src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"", dom)
    assert len(images) == 3  # two bar charts + the sweep curve
    assert "&lt;script&gt;document.title='PWNED'" in dom
    assert "not expected to be visible" in dom
    shot = screenshot(html_path, tmp_path / "shot.png")
    assert shot.stat().st_size > 10_000
    markdown = md_path.read_text()
    assert "| values: pro-America | rate choosing target value | msm+aft | 0.610 |" in markdown
    assert (tmp_path / "charts").is_dir() and len(list((tmp_path / "charts").glob("*.png"))) == 3


def test_a_two_value_design_leads_with_the_papers_picture_and_a_compact_matrix(tmp_path: Path) -> None:
    results = [ArmResult(arm=arm, eval_name=f"values: {suite}", metric="rate choosing the target value", mean=mean,
                         ci_low=mean - 0.05, ci_high=mean + 0.05, n_items=100, n_seeds=3, unit="item",
                         dominant="item")
               for arm, rates in {"aft-only": (0.36, 0.32), "america-msm-aft": (0.55, 0.29),
                                  "affordability-msm-aft": (0.38, 0.48)}.items()
               for suite, mean in zip(("pro_america", "pro_affordability"), rates)]
    data = ReportData(title="Cheese", experiment="cheese", created="2026-12-01T00:00:00Z", config_yaml="seeds: [0]",
                      results=results, counts=[{"arm": "aft-only", "eval": "values", "items scored": 200}])
    html_path, md_path = write_report(data, tmp_path)
    dom = render_dom(html_path)
    assert dom.index("headline") < dom.index(">At a glance<") < dom.index(">Results<")
    assert "[0.500, 0.600]" in dom.split(">At a glance<", 1)[1].split(">Results<", 1)[0]  # america-msm-aft
    assert ">What was scored, and what failed<" in dom and ">200<" in dom
    images = re.findall(r"<img src=\"data:image/png;base64,[A-Za-z0-9+/=]+\"", dom)
    assert len(images) == 3  # the dissociation picture, then one bar chart per value suite
    assert (tmp_path / "charts" / "headline.png").stat().st_size > 10_000
    assert md_path.read_text().index("headline.png") < md_path.read_text().index("## Results")


def test_the_headline_plots_the_value_sets_named_after_the_mirrored_specs_not_the_in_domain_set() -> None:
    from msmkit.experiment.config import load_experiment
    from msmkit.experiment.quickstart import quickstart_config
    from msmkit.experiment.results import dissociation_axes

    config = load_experiment(quickstart_config())  # items [pro_america, pro_affordability, cheese]
    assert dissociation_axes(config) == ("values: pro_america", "values: pro_affordability")
    reordered = config.model_copy(update={"evals": [config.evals[0].model_copy(
        update={"items": ["cheese", "pro_affordability", "pro_america"]})]})
    assert dissociation_axes(reordered) == ("values: pro_america", "values: pro_affordability")
    unpaired = reordered.model_copy(update={"comparisons": []})
    assert dissociation_axes(unpaired) == ("values: cheese", "values: pro_affordability")  # config order


def test_a_comparison_of_arms_that_answered_alike_says_why_its_interval_has_no_width() -> None:
    import numpy as np

    from msmkit.eval.stats import crossed_difference
    from msmkit.experiment.results import variance_column

    answers = np.array([[1.0, 0.0, 1.0, 1.0, 0.0, 1.0]])  # one seed each, the same answer on every item
    alike = crossed_difference(answers, answers.copy())
    assert alike.low == alike.high == 0.0 and "no unit differed" in variance_column(alike)
    apart = crossed_difference(answers, np.array([[0.0, 0.0, 1.0, 0.0, 0.0, 1.0]]))
    assert apart.high > apart.low and "no unit differed" not in variance_column(apart)
