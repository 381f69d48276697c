"""Private training (updp train-dp, updp evaluate-dp): the validator passes, the budget is
spent, noise is really added, ε = ∞ is non-private training, the folders load as scorers,
the evaluation has every section; the fairness metrics on hand-made arrays."""

import json
import math

import numpy as np
import pytest

from updp_napari.core.errors import InputError, UpdpError
from updp_napari.scoring import dp_evaluate as ev

torch = pytest.importorskip("torch")
pytest.importorskip("opacus", reason="opacus is not installed (pip install 'updp-napari[dp]')")
torch.set_num_threads(1)

from updp_napari.scoring import dp  # noqa: E402  (after the skip: it needs opacus to be useful)

TINY = dict(epochs=1, batch_size=8, physical_batch=5, input_size=32, widths=(8, 16, 32, 32),
            decoder=16)


@pytest.fixture(scope="module")
def dp_cohort(tmp_path_factory):
    """20 patients of one study each over 5 sites, 64 px: small enough for a second's training."""
    from updp_napari.cohort.generate import make_cohort

    out = tmp_path_factory.mktemp("dp") / "c"
    make_cohort(out, patients=20, studies=1, seed=31, size=64, sites=5)
    return out


@pytest.fixture(scope="module")
def dp_data(dp_cohort):
    from updp_napari.cohort.dataset import load_cohort_images

    return load_cohort_images(dp_cohort, 32)


def _train(data, **options):
    return dp.train_pathology_dp(data.images, data.labels, data.label_names, data.masks,
                                 **{**TINY, **options})


def _weights(scorer):
    return torch.cat([v.flatten().float() for v in scorer.model.state_dict().values()])


# --- the network and the budget ------------------------------------------------------------

def test_the_network_passes_the_module_validator_and_the_batch_norm_one_does_not():
    from updp_napari.scoring.pathology import PathologyNet

    assert dp.validation_errors(dp.dp_network(7)) == []
    assert dp.validation_errors(PathologyNet(7))  # batch norm: Opacus refuses it
    inplace = [m for m in dp.dp_network(7).modules() if getattr(m, "inplace", False)]
    assert not inplace


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_the_run_spends_its_budget(dp_data, accountant):
    scorer = _train(dp_data, epsilon=3.0, accountant=accountant, seed=0)
    p = scorer.card["privacy"]
    assert abs(p["epsilon_spent"] - 3.0) <= dp.EPSILON_TOLERANCE
    assert p["accountant"] == accountant
    assert p["noise_multiplier"] > 0 and p["sampling"] == "Poisson"
    assert p["sampling_rate"] == pytest.approx(1 / math.ceil(20 / 8), abs=1e-6)
    assert p["steps"] == math.ceil(20 / 8) and p["delta"] <= 1 / (10 * 20)
    assert p["validator"] == "passed" and p["max_grad_norm"] == 1.0


def test_noise_is_added_two_seeds_differ_one_seed_repeats(dp_data):
    a = _weights(_train(dp_data, epsilon=1.0, seed=1))
    b = _weights(_train(dp_data, epsilon=1.0, seed=2))
    again = _weights(_train(dp_data, epsilon=1.0, seed=1))
    assert not torch.allclose(a, b, atol=1e-3)
    assert torch.equal(a, again)


def test_noise_is_what_separates_a_private_run_from_the_non_private_one(dp_data):
    """Same seed, same batches: ε = 1 moves the weights far from ε = ∞, which equals plain
    PyTorch training (no Opacus) up to float rounding through Adam."""
    reference = _train(dp_data, epsilon=math.inf, private=False, seed=3)
    infinite = _train(dp_data, epsilon=math.inf, seed=3)
    private = _train(dp_data, epsilon=1.0, seed=3)
    w_ref, w_inf, w_dp = _weights(reference), _weights(infinite), _weights(private)
    assert (w_inf - w_ref).abs().max() < 2e-3
    assert (w_dp - w_ref).abs().max() > 10 * (w_inf - w_ref).abs().max()
    np.testing.assert_allclose(infinite.predict(dp_data.images[:6]),
                               reference.predict(dp_data.images[:6]), atol=2e-3)
    assert infinite.card["privacy"]["noise_multiplier"] == 0
    assert infinite.card["privacy"]["epsilon_spent"] is None
    assert infinite.card["privacy"]["clipping"] == "none"


def test_epsilon_infinity_equals_plain_training_exactly_with_sgd(dp_data, monkeypatch):
    """With plain SGD (no Adam normalisation) the two paths agree to float precision: the
    Opacus path adds nothing but noise and clipping."""
    monkeypatch.setattr(torch.optim, "AdamW",
                        lambda params, lr, weight_decay: torch.optim.SGD(params, lr=lr))
    a = _weights(_train(dp_data, epsilon=math.inf, seed=4))
    b = _weights(_train(dp_data, epsilon=math.inf, private=False, seed=4))
    assert (a - b).abs().max() < 1e-5


def test_clear_errors(dp_data, dp_cohort, tmp_path):
    with pytest.raises(InputError, match=r"delta: .* above 1/\(10·N\)"):
        _train(dp_data, epsilon=1.0, delta=0.01)
    with pytest.raises(InputError, match="accountant: unknown 'moments'"):
        _train(dp_data, epsilon=1.0, accountant="moments")
    with pytest.raises(InputError, match="needs epsilon = inf"):
        _train(dp_data, epsilon=1.0, private=False)
    with pytest.raises(InputError, match="epsilon: every budget must be positive"):
        dp.parse_epsilons("1,-2")
    with pytest.raises(InputError, match="not a comma list"):
        dp.parse_epsilons("1,lots")
    assert dp.parse_epsilons("1, 8,inf") == [1.0, 8.0, math.inf]
    with pytest.raises(InputError, match="site: site_z not in"):
        dp.train_dp(dp_cohort, tmp_path / "o", epsilons=[1.0], sites=["site_z"])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "ground_truth.jsonl").write_text("")
    with pytest.raises(InputError, match="holds no studies"):
        dp.train_dp(empty, tmp_path / "o", epsilons=[1.0])
    assert dp.default_delta(300) == pytest.approx(3e-4)
    assert dp.default_delta(1000) == pytest.approx(1e-4)


# --- the command line, the folders, the evaluation -----------------------------------------

@pytest.fixture(scope="module")
def trained(dp_cohort, tmp_path_factory):
    from updp_napari.cli import main

    out = tmp_path_factory.mktemp("dp-out") / "models"
    code = main(["train-dp", str(dp_cohort), "--out", str(out), "--task", "pathology",
                 "--site", "site_a,site_b,site_c,site_d", "--epsilon", "2,inf", "--epochs", "1",
                 "--batch", "6", "--physical-batch", "4", "--size", "32", "--json", "-q"])
    assert code == 0
    return out


def test_train_dp_writes_one_scorers_folder_per_budget(trained, capsys):
    from updp_napari.scoring import load_scorers

    assert sorted(p.name for p in trained.iterdir() if p.name.startswith("eps-")) == \
        ["eps-2", "eps-inf"]
    scorers = load_scorers(trained / "eps-2")
    card = scorers.pathology.card
    assert card["privacy"]["target_epsilon"] == 2.0
    assert abs(card["privacy"]["epsilon_spent"] - 2.0) <= dp.EPSILON_TOLERANCE
    assert card["training_sites"] == ["site_a", "site_b", "site_c", "site_d"]
    assert scorers.pathology.config["norm"] == "group"
    probs = scorers.pathology.predict(np.random.default_rng(0).random((2, 40, 40)))
    assert probs.shape == (2, 7) and np.isfinite(probs).all()
    run = json.loads((trained / "eps-inf" / dp.RUN_CARD).read_text())
    assert run["epsilon"] is None and run["privacy"]["noise_multiplier"] == 0


def test_evaluate_dp_has_every_section_and_writes_html(trained, dp_cohort, tmp_path, capsys):
    from updp_napari.cli import main

    page = tmp_path / "dp.html"
    assert main(["evaluate-dp", str(trained), "--test", str(dp_cohort), "--size", "32",
                 "--repeats", "20", "--html", str(page), "--json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test"]["attributes"][:3] == ["sex", "age_group", "site"]
    assert [m["epsilon"] for m in result["models"]] == [2.0, None]
    for m in result["models"]:
        assert set(m["auroc"]) == {"all", "in_site", "off_site", "drop"}
        assert m["auroc"]["off_site"]["studies"] == m["subgroups"]["site"]["site_e"]["studies"]
        assert set(m["subgroups"]) == set(result["test"]["attributes"])
        for row in m["subgroups"]["sex"].values():
            assert {"auroc", "statistical_parity_difference", "tpr", "fpr"} <= set(row)
        assert set(m["equalized_odds"]) == set(result["test"]["attributes"])
        assert "pearson_r" in m["size_vs_auroc_loss"]
    text = page.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 1 + len(result["test"]["attributes"])
    assert "src='http" not in text and "<script" not in text


def test_train_dp_command_errors(dp_cohort, tmp_path, capsys):
    from updp_napari.cli import main

    assert main(["train-dp", str(dp_cohort), "--out", str(tmp_path / "o"), "--delta", "0.5",
                 "-q"]) == 2
    assert "above 1/(10·N)" in capsys.readouterr().err
    assert main(["train-dp", str(dp_cohort), "--out", str(tmp_path / "o"), "--accountant",
                 "gauss", "-q"]) == 2
    assert "accountant: unknown 'gauss'" in capsys.readouterr().err
    assert main(["evaluate-dp", str(tmp_path), "--test", str(dp_cohort), "-q"]) == 2
    assert "made by updp train-dp" in capsys.readouterr().err


def test_a_run_from_a_public_base_keeps_its_encoder_with_tune_decoder(trained, dp_cohort,
                                                                      tmp_path, capsys):
    """--base starts from a classifier trained before (on public studies: here the fixture's
    ε = ∞ model stands for one); --tune decoder trains its decoder and keeps the encoder (and
    the pooled head that serves only the encoder); the cards say which base it was."""
    from updp_napari.cli import main
    from updp_napari.scoring import load_scorers

    base = trained / "eps-inf"
    out = tmp_path / "based"
    assert main(["train-dp", str(dp_cohort), "--out", str(out), "--base", str(base),
                 "--tune", "decoder", "--epsilon", "2", "--epochs", "1", "--batch", "6",
                 "--size", "32", "--json", "-q"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["base"]["folder"] == str(base) and summary["base"]["target_epsilon"] is None
    before = load_scorers(base).pathology.model.state_dict()
    scorer = load_scorers(out / "eps-2").pathology
    after = scorer.model.state_dict()
    for name, value in after.items():
        same = torch.equal(value, before[name])
        assert same == name.startswith(("encoder.", "pooled_head.")), name
    assert scorer.card["tune"] == "decoder" and scorer.card["base"]["folder"] == str(base)
    assert 0 < scorer.card["trained_parameters"] < scorer.card["parameters"]
    assert json.loads((out / "eps-2" / dp.RUN_CARD).read_text())["base"]["folder"] == str(base)
    # A base read at another size, or a decoder-only run without a base, is refused.
    assert main(["train-dp", str(dp_cohort), "--out", str(tmp_path / "o"), "--base", str(base),
                 "--size", "64", "-q"]) == 2
    assert "not a base for private training: input_size 32 (needs 64)" in \
        capsys.readouterr().err
    assert main(["train-dp", str(dp_cohort), "--out", str(tmp_path / "o"), "--tune",
                 "decoder", "-q"]) == 2
    assert "needs a base" in capsys.readouterr().err
    assert main(["train-dp", str(dp_cohort), "--out", str(tmp_path / "o"), "--base",
                 str(tmp_path / "none"), "-q"]) == 2
    assert "none: not a base for private training" in capsys.readouterr().err


def test_train_dp_says_a_small_archive_needs_a_public_base(trained, dp_cohort, tmp_path,
                                                            capsys):
    """Private runs from random weights get a note pointing at --base; a run from a base, a
    non-private run and -q do not."""
    from updp_napari.cli import main

    common = ["--epochs", "1", "--batch", "6", "--size", "32", "--json"]
    assert main(["train-dp", str(dp_cohort), "--out", str(tmp_path / "a"), "--epsilon", "2",
                 *common]) == 0
    assert "no --base, so the private models start from random weights" in capsys.readouterr().err
    for extra in (["--epsilon", "inf"], ["--epsilon", "2", "-q"],
                  ["--epsilon", "2", "--base", str(trained / "eps-inf"), "--tune", "decoder"]):
        assert main(["train-dp", str(dp_cohort), "--out", str(tmp_path / "b"), *extra,
                     *common]) == 0
        assert "no --base" not in capsys.readouterr().err, extra


def test_train_dp_on_an_archive_learns_from_its_reports(dp_cohort, tmp_path, capsys):
    """No ground truth: labels come from the reports, prepared into DIR/work first."""
    import shutil

    from updp_napari.cli import main

    archive = tmp_path / "archive"
    shutil.copytree(dp_cohort, archive)
    (archive / "ground_truth.jsonl").unlink()
    out = tmp_path / "models"
    assert main(["train-dp", str(archive), "--out", str(out), "--epsilon", "inf", "--epochs", "1",
                 "--batch", "6", "--size", "32", "--json", "-q"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["prepared"]["studies"] == 20
    assert (out / "work" / "ground_truth.jsonl").is_file()
    assert (out / "eps-inf" / "pathology" / "updp_scorer.json").is_file()


def test_help_explains_the_commands(capsys):
    from updp_napari.cli import main

    for name in ("train-dp", "evaluate-dp"):
        with pytest.raises(SystemExit):
            main([name, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Poisson" in text and "module validator" in text and "patient-bootstrap" in text


@pytest.mark.slow
def test_bench_dp_reports_stages_figures_and_targets():
    from updp_napari.bench_dp import bench_dp

    stages = set()
    result = bench_dp(studies=20, size=64, epsilons=(2.0, 8.0, math.inf), epochs=1, batch=4,
                      public_studies=20, progress=lambda stage, done, total: stages.add(stage))
    assert set(result["seconds"]) == {"cohorts", "base", "train", "evaluate", "total"}
    assert set(result["runs"]) == {"random/eps-2", "random/eps-8", "random/eps-inf",
                                   "public-base/eps-2", "public-base/eps-8", "public-base/eps-inf",
                                   "public-base-all/eps-inf"}
    assert stages == {"base/eps-inf", *result["runs"]}  # each training run's progress, by name
    assert abs(result["runs"]["random/eps-2"]["epsilon_spent"] - 2.0) <= dp.EPSILON_TOLERANCE
    assert result["runs"]["public-base/eps-inf"]["noise_multiplier"] == 0
    assert result["public_base_alone"]["auroc"]["auroc"] is not None
    assert result["targets"]["epsilon_spent_within_0.05"] is True
    assert set(result["targets"]) == {"epsilon_spent_within_0.05",
                                      "eps8_within_0.05_of_non_private", "under_20_minutes"}
    assert result["training_studies"] < 20  # site e is held out
    # The target compares ε = 8 from the base with the best of the three non-private models.
    runs = result["runs"]
    strongest = max(runs[f"{k}/eps-inf"]["auroc"]["auroc"]
                    for k in ("random", "public-base", "public-base-all"))
    assert result["strongest_non_private_auroc"] == strongest
    assert result["auroc_gap_eps8"]["eps8_vs_strongest_non_private"] == \
        round(strongest - runs["public-base/eps-8"]["auroc"]["auroc"], 4)
    assert result["targets"]["eps8_within_0.05_of_non_private"] == \
        (result["auroc_gap_eps8"]["eps8_vs_strongest_non_private"] <= 0.05)
    # Too few studies for the batch: refused once the cohorts are made, before any training.
    with pytest.raises(UpdpError, match=r"batch of 64 is more than the \d+ studies of sites a-d "
                                        r"among 20: use --studies 120"):
        bench_dp(studies=20, size=64, public_studies=0,
                 progress=lambda *a: pytest.fail("trained"))
    with pytest.raises(UpdpError, match="public studies must be 0 .* and the batch of 64"):
        bench_dp(studies=300, public_studies=30, progress=lambda *a: pytest.fail("trained"))


# --- the metrics on hand-made arrays -------------------------------------------------------

def test_statistical_parity_and_equalized_odds_by_hand():
    decisions = np.array([1, 1, 0, 0, 1, 0, 0, 0], bool)
    groups = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
    truth = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    assert ev.statistical_parity(decisions, groups) == {"a": 0.25, "b": -0.25}
    three = np.array(["a", "a", "b", "b", "c", "c", "c", "c"])
    # c: 1/4 against the others' 2/4 (size-weighted)
    assert ev.statistical_parity(decisions, three)["c"] == pytest.approx(0.25 - 0.5)
    # TPR a 1.0, b 0.5; FPR both 0 -> 0.5
    assert ev.equalized_odds(decisions, truth, groups) == pytest.approx(0.5)
    assert ev.equalized_odds(decisions, truth, np.array(["a"] * 8)) is None


def test_bootstrap_interval_pearson_and_rate_matched_decisions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (60, 2))
    probs = labels + rng.normal(0, 0.8, labels.shape)
    patients = [f"p{i // 2}" for i in range(60)]
    b = ev.patient_bootstrap(probs, labels, patients, repeats=100)
    assert b["low"] < b["auroc"] < b["high"] and b["patients"] == 30
    assert ev.macro_auroc(probs, np.zeros_like(labels)) is None
    assert ev.pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert ev.pearson([1, 2], [3, 4]) is None
    truth = np.array([1, 0, 1, 0, 0], bool)
    d = ev.rate_matched_decisions(np.array([[0.9], [0.1], [0.8], [0.7], [0.2]]), truth)
    assert d.tolist() == [True, False, True, False, False]


def test_missing_opacus_is_named(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_opacus(name, *args, **kwargs):
        if name == "opacus" or name.startswith("opacus."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_opacus)
    with pytest.raises(UpdpError, match=r"pip install 'updp-napari\[dp\]'"):
        dp.require_opacus()
