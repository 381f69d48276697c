"""The learned report labeller (updp pretrain-report-encoder, train-report-classifier,
evaluate-report-classifier): the LoRA adapters really train, each report's gradient is its
own, the budget is spent, noise separates seeds, ε = ∞ is non-private training, the
commands run end to end; F1 on hand-made arrays."""

import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from updp_napari.core.errors import InputError, UpdpError
from updp_napari.core.vocabulary import FINDINGS

torch = pytest.importorskip("torch")
pytest.importorskip("opacus", reason="opacus is not installed (pip install 'updp-napari[dp]')")
pytest.importorskip("peft", reason="peft is not installed (pip install 'updp-napari[dp]')")
pytest.importorskip("transformers", reason="transformers is not installed "
                                           "(pip install 'updp-napari[ner]')")
torch.set_num_threads(1)

from updp_napari.scoring import dp  # noqa: E402  (after the skips)
from updp_napari.scoring import report_classifier as rc  # noqa: E402

#: An encoder of a few thousand parameters and a run of a few steps: seconds each.
TINY_ENCODER = dict(vocab_size=300, hidden=32, layers=1, heads=2, intermediate=64,
                    max_length=96, epochs=1, batch_size=8)
TINY = dict(epochs=2, batch_size=6, physical_batch=4, lora_r=2)


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """A public cohort (pre-training text) and a private one (the hospital's reports)."""
    from updp_napari.cohort.generate import make_cohort

    root = tmp_path_factory.mktemp("rc")
    make_cohort(root / "public", patients=8, studies=1, seed=51, size=64, sites=2)
    make_cohort(root / "private", patients=14, studies=1, seed=52, size=64, sites=2)
    return root / "public", root / "private"


@pytest.fixture(scope="module")
def encoder(cohorts, tmp_path_factory):
    out = tmp_path_factory.mktemp("rc-enc") / "encoder"
    rc.pretrain_encoder([cohorts[0]], out, **TINY_ENCODER)
    return out


@pytest.fixture(scope="module")
def hospital(cohorts):
    _ids, texts, labels = rc.cohort_reports(cohorts[1])
    return texts, labels


def _train(encoder, hospital, **options):
    texts, labels = hospital
    return rc.train_report_classifier(texts, labels, encoder, **{**TINY, **options})


def _adapters(classifier):
    return torch.cat([v.flatten() for v in classifier.lora.values()])


# --- the encoder ---------------------------------------------------------------------------

def test_pretraining_reads_public_text_and_writes_a_card(encoder, cohorts):
    card = json.loads((encoder / rc.ENCODER_CARD).read_text())
    assert card["kind"] == rc.ENCODER_KIND
    assert card["public_text"] == [{"source": str(cohorts[0]), "kind": "cohort", "reports": 8}]
    assert card["architecture"]["layers"] == 1 and card["architecture"]["hidden"] == 32
    assert card["training"]["steps"] >= 1 and card["held_out"] == 1
    assert (encoder / "config.json").is_file() and (encoder / "tokenizer.json").is_file()


# --- the pitfalls --------------------------------------------------------------------------

def test_lora_adapters_change_and_nothing_else_of_the_encoder_does(encoder, hospital):
    classifier = _train(encoder, hospital, epsilon=8.0, seed=0)
    b = [v for k, v in classifier.lora.items() if "lora_B" in k]
    assert b and all(v.abs().max() > 0 for v in b)  # B starts at zero: it moved
    assert classifier.card["lora"]["largest_change"] > 0
    merged = classifier.network.encoder.state_dict()
    base, _tokenizer, _card, _stats = rc._load_encoder(encoder)
    for name, value in base.state_dict().items():
        moved = not torch.equal(merged[name], value)
        assert moved == any(t in name for t in ("query.weight", "value.weight")), name


def test_adapters_that_never_move_are_an_error(encoder, hospital, monkeypatch):
    """What happens when the adapters are made before the encoder moves to its device: the
    run trains other tensors; the check after training says so instead of saving a model
    that is the untouched encoder."""
    real = rc.dp_sgd

    def frozen(model, n, loss_of, **options):
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        run = real(model, n, loss_of, **options)
        run.module.load_state_dict(before)
        return run

    monkeypatch.setattr(rc, "dp_sgd", frozen)
    with pytest.raises(UpdpError, match="LoRA adapters did not change"):
        _train(encoder, hospital, epsilon=math.inf, seed=0)


def test_each_reports_gradient_is_its_own(encoder, hospital):
    """Opacus' per-report gradients (explicit position and token-type ids, one loss per
    report) equal the gradients of each report alone, padded differently."""
    from opacus import GradSampleModule

    texts, labels = hospital
    torch.manual_seed(0)
    model, tokenizer, card = rc.lora_network(encoder, lora_r=2)
    torch.nn.init.normal_(model.head.weight)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    # In double precision: the batch and each report alone sum in another order, and float32
    # rounding of that order, which depends on the threads a run has, would blur the
    # comparison below.
    model = model.double()
    wrapped = GradSampleModule(model)
    y = torch.from_numpy(labels[:3]).double()

    def loss(net, chosen, y):
        ids, attention = rc._encode(tokenizer, chosen, card["architecture"]["max_length"])
        positions, types = rc._ids(attention)
        logits = net(ids, attention, positions, types)
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits, y, reduction="none").mean(1)

    short = [texts[0][:120], texts[1], texts[2][:300]]  # three lengths: padding differs
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        # The mean, as training does: Opacus scales each report's gradient back by the batch.
        loss(wrapped, short, y).mean().backward()
    trainable = [(n, p) for n, p in wrapped.named_parameters() if p.requires_grad]
    samples = {n: p.grad_sample.clone() for n, p in trainable}
    wrapped.zero_grad(set_to_none=True)
    wrapped.remove_hooks()
    for i in range(3):
        model.zero_grad(set_to_none=True)
        loss(model, short[i:i + 1], y[i:i + 1]).sum().backward()
        for name, p in model.named_parameters():
            if p.requires_grad:
                key = next(k for k in samples if k.endswith(name))
                # Sums in another order: agreement to 1e-4 of the gradient's scale (a report's
                # gradient mixed with another's is off by its whole size).
                scale = float(p.grad.abs().max()) or 1.0
                torch.testing.assert_close(samples[key][i], p.grad, atol=1e-4 * scale, rtol=1e-3)


def test_the_head_reads_a_token_and_the_ones_before_it(encoder):
    """Each token's score is read from the window of states ending at it: a change just
    before a finding's word ("no") changes that word's score, one after it does not, and
    the padding after a report changes nothing."""
    model, _tokenizer, _card = rc.lora_network(encoder, lora_r=2, head_window=3)
    assert model.head.kernel_size == (3,)
    torch.nn.init.normal_(model.head.weight)

    class Given(torch.nn.Module):  # the encoder's states, given: the head alone is tested
        def __init__(self, states):
            super().__init__()
            self.states = states

        def forward(self, input_ids, **_ids):
            return (self.states[:, :input_ids.shape[1]],)

    n = 8
    states = torch.randn(1, n + 4, 32, generator=torch.Generator().manual_seed(0))
    scores = []
    model.head.register_forward_hook(lambda _m, _i, out: scores.append(out[:, :, :n]))

    def run(states, padded=False):
        length = n + 4 if padded else n
        attention = (torch.arange(length) < n).long().unsqueeze(0)
        model.encoder = Given(states)
        with torch.no_grad():
            model(torch.zeros(1, length, dtype=torch.long), attention, *rc._ids(attention))
        return scores[-1]

    plain = run(states)
    changed_padding = states.clone()
    changed_padding[0, n:] = 100.0
    scale = float(plain.abs().max())  # the scores are large: standardised states
    torch.testing.assert_close(run(changed_padding, padded=True), plain, rtol=1e-4,
                               atol=1e-5 * scale)
    changed = states.clone()
    changed[0, 3] += 1.0
    moved = (run(changed) - plain).abs().amax(1)[0] > 1e-3 * scale
    assert moved.tolist() == [False, False, False, True, True, True, False, False]


def test_a_linear_head_saved_with_window_1_loads(encoder, hospital, tmp_path):
    classifier = _train(encoder, hospital, epsilon=math.inf, seed=0, head_window=1)
    assert classifier.card["head"]["window"] == 1
    assert classifier.card["head"]["parameters"] == 32 * len(FINDINGS) + len(FINDINGS)
    classifier.save(tmp_path / "m")
    # A head saved as a linear layer's [findings, hidden] weight is the same head.
    from safetensors.torch import load_file, save_file

    head = load_file(str(tmp_path / "m" / rc.HEAD_FILE))
    head["head.weight"] = head["head.weight"][..., 0]
    save_file(head, str(tmp_path / "m" / rc.HEAD_FILE))
    loaded = rc.ReportClassifier.load(tmp_path / "m")
    texts = hospital[0][:3]
    np.testing.assert_allclose(loaded.predict(texts), classifier.predict(texts), atol=1e-5)
    with pytest.raises(InputError, match="head_window"):
        _train(encoder, hospital, epsilon=math.inf, head_window=0)


# --- the budget ----------------------------------------------------------------------------

@pytest.mark.parametrize("epsilon", [pytest.param(1.0, marks=pytest.mark.slow), 8.0])
def test_the_run_spends_its_budget_and_the_card_says_how(encoder, hospital, epsilon):
    p = _train(encoder, hospital, epsilon=epsilon, seed=0).card["privacy"]
    assert abs(p["epsilon_spent"] - epsilon) <= dp.EPSILON_TOLERANCE
    assert p["noise_multiplier"] > 0 and p["accountant"] == "rdp"
    assert p["sampling"] == "Poisson"
    assert p["sampling_rate"] == pytest.approx(1 / math.ceil(14 / 6), abs=1e-6)
    assert p["steps"] == 2 * math.ceil(14 / 6)
    assert p["delta"] <= 1 / (10 * 14) and p["clipping"] == "per report"


@pytest.mark.slow
def test_two_seeds_differ_one_seed_repeats(encoder, hospital):
    a = _adapters(_train(encoder, hospital, epsilon=1.0, seed=1))
    b = _adapters(_train(encoder, hospital, epsilon=1.0, seed=2))
    again = _adapters(_train(encoder, hospital, epsilon=1.0, seed=1))
    assert not torch.allclose(a, b, atol=1e-3)
    assert torch.equal(a, again)


def test_epsilon_infinity_is_non_private_training(encoder, hospital):
    """Same seed, same batches: ε = ∞ through Opacus equals plain PyTorch (no noise, no
    clipping), and ε = 1 is far from both."""
    reference = _train(encoder, hospital, epsilon=math.inf, private=False, seed=3)
    infinite = _train(encoder, hospital, epsilon=math.inf, seed=3)
    noisy = _train(encoder, hospital, epsilon=1.0, seed=3)
    w_ref, w_inf, w_dp = _adapters(reference), _adapters(infinite), _adapters(noisy)
    same, moved = (w_inf - w_ref).abs(), (w_dp - w_ref).abs()
    # Nearly every weight is the same to rounding. Adam divides by the gradients' size, so
    # where a gradient is near zero the rounding of per-report sums against a batch's
    # gradient (which differs between CPUs' vector units) can move a weight by up to a step
    # of the learning rate; still no weight moves as far as the noise moves a typical one.
    assert float(same.median()) < 1e-5
    assert float(same.max()) < 0.1 * float(moved.median())
    assert float(moved.median()) > 1e-3
    texts = hospital[0][:4]
    # The same rounding, from the zero head, grows to a few 1e-4 of probability.
    np.testing.assert_allclose(infinite.predict(texts), reference.predict(texts), atol=1e-3)
    assert np.abs(noisy.predict(texts) - reference.predict(texts)).max() > 1e-2
    p = infinite.card["privacy"]
    assert p["noise_multiplier"] == 0 and p["epsilon_spent"] is None and p["clipping"] == "none"


def test_clear_errors(encoder, hospital, cohorts, tmp_path):
    with pytest.raises(InputError, match=r"delta: .* above 1/\(10·N\)"):
        _train(encoder, hospital, epsilon=1.0, delta=0.5)
    with pytest.raises(InputError, match="needs epsilon = inf"):
        _train(encoder, hospital, epsilon=1.0, private=False)
    with pytest.raises(InputError, match="lora_r"):
        _train(encoder, hospital, epsilon=1.0, lora_r=0)
    with pytest.raises(InputError, match="not a report encoder"):
        rc.train_report_classifiers(cohorts[1], tmp_path / "o", base=tmp_path, epsilons=[1.0])
    with pytest.raises(InputError, match="not a cohort folder"):
        rc.cohort_reports(tmp_path)
    with pytest.raises(InputError, match="not a report classifier"):
        rc.ReportClassifier.load(tmp_path)


def test_missing_peft_is_named(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_peft(name, *args, **kwargs):
        if name == "peft" or name.startswith("peft."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_peft)
    with pytest.raises(UpdpError, match=r"peft==0.21.2"):
        rc.require_peft()


# --- F1 --------------------------------------------------------------------------------------

def test_f1_per_finding_and_weighted_by_hand():
    gold = np.array([[1, 0], [1, 1], [0, 0], [1, 0]], bool)
    pred = np.array([[1, 0], [0, 1], [1, 0], [1, 1]], bool)
    table = rc.f1_table(pred, gold, names=("a", "b"))
    a, b = table["findings"]["a"], table["findings"]["b"]
    assert (a["gold"], a["predicted"]) == (3, 3) and a["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert (b["gold"], b["predicted"]) == (1, 2) and b["f1"] == pytest.approx(2 / 3, abs=1e-4)
    assert table["weighted_f1"] == pytest.approx((3 * 2 / 3 + 1 * 2 / 3) / 4, abs=1e-4)
    none = rc.f1_table(np.zeros((2, 2), bool), np.zeros((2, 2), bool), names=("a", "b"))
    assert none["weighted_f1"] is None


# --- the commands ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(cohorts, tmp_path_factory):
    """train-report-classifier --base scratch: pre-trains on --public, then ε = 8 and inf."""
    from updp_napari.cli import main

    out = tmp_path_factory.mktemp("rc-out") / "models"
    code = main(["train-report-classifier", str(cohorts[1]), "--out", str(out), "--base",
                 "scratch", "--public", str(cohorts[0]), "--lora-r", "2", "--epsilon", "8,inf",
                 "--epochs", "1", "--batch", "6", "--physical-batch", "4", "--json", "-q"])
    assert code == 0
    return out


def test_train_report_classifier_writes_one_folder_per_budget(trained):
    assert sorted(p.name for p in trained.iterdir()) == ["encoder", "eps-8", "eps-inf"]
    classifier = rc.ReportClassifier.load(trained / "eps-8")
    card = classifier.card
    assert card["kind"] == rc.CLASSIFIER_KIND and card["label_names"] == list(FINDINGS)
    assert abs(card["privacy"]["epsilon_spent"] - 8.0) <= dp.EPSILON_TOLERANCE
    assert card["lora"]["r"] == 2 and card["encoder"]["public_text"][0]["kind"] == "cohort"
    probs = classifier.predict(["No acute cardiopulmonary process.", "Large left effusion."])
    assert probs.shape == (2, len(FINDINGS)) and np.isfinite(probs).all()


def test_evaluate_report_classifier_scores_the_cohort_beside_the_rules(trained, cohorts,
                                                                       capsys):
    from updp_napari.cli import main

    assert main(["evaluate-report-classifier", str(trained), "--test", str(cohorts[1]),
                 "--json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [m["epsilon"] for m in result["models"]] == [8.0, None]
    rules = result["sets"]["cohort"]["rules"]
    assert rules["reports"] == 14 and rules["weighted_f1"] > 0.5
    for m in result["models"]:
        assert set(m["cohort"]["findings"]) == set(FINDINGS)
        assert m["cohort"]["gap_to_non_private"] is not None
    assert result["models"][1]["cohort"]["gap_to_non_private"] == 0
    assert main(["evaluate-report-classifier", str(trained), "--test", str(cohorts[1]),
                 "-q"]) == 0
    text = capsys.readouterr().out
    assert "weighted" in text and "rules" in text and "ε = 8" in text


def test_evaluate_on_the_indiana_reports(trained, tmp_path, capsys):
    from public_data import iu_reports_dir

    from updp_napari.cli import main

    folder, reason = iu_reports_dir()
    if folder is None:
        pytest.skip(f"Indiana University reports unavailable: {reason}")
    few = tmp_path / "iu" / "ecgen-radiology"
    few.mkdir(parents=True)
    for n in range(2, 62, 2):  # thirty of the test half (even numbers)
        source = folder / "ecgen-radiology" / f"{n}.xml"
        if source.is_file():
            shutil.copy(source, few)
    assert main(["evaluate-report-classifier", str(trained / "eps-inf"), "--iu",
                 str(tmp_path / "iu"), "--json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    iu = result["sets"]["iu"]
    assert iu["half"] == "test" and 0 < iu["reports"] <= 30
    assert set(iu["rules"]["findings"]) == set(FINDINGS)
    assert set(result["models"][0]["iu"]["findings"]) == set(FINDINGS)


def test_label_reports_with_the_learned_labeller(trained, cohorts, capsys):
    """label-reports --model labels with the classifier: positive exactly where its
    probability reaches the threshold, and the ε its card records is shown."""
    from updp_napari.cli import main

    model = trained / "eps-8"
    assert main(["label-reports", str(cohorts[1]), "--model", str(model), "--json",
                 "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert abs(result["model"]["epsilon_spent"] - 8.0) <= dp.EPSILON_TOLERANCE
    assert result["model"]["threshold"] == 0.5 and result["skipped"] == []
    reports = result["reports"]
    assert len(reports) == 14
    texts = [(cohorts[1] / r["id"]).read_text(encoding="utf-8") for r in reports]
    expected = rc.ReportClassifier.load(model).predict(texts)
    for r, row in zip(reports, expected):
        assert list(r["labels"]) == list(FINDINGS)
        for f, p in zip(FINDINGS, row):
            assert r["probabilities"][f] == pytest.approx(float(p), abs=1e-4)
            assert r["labels"][f] == ("positive" if p >= 0.5 else "negative")
    assert main(["label-reports", str(cohorts[1]), "--model", str(model), "-q"]) == 0
    text = capsys.readouterr().out
    assert "labelled by the report classifier" in text and "ε spent 8.000" in text
    assert "14 reports labelled" in text
    assert main(["label-reports", str(cohorts[1]), "--model", str(model), "--uncertain",
                 "positive", "-q"]) == 2
    assert "never uncertain" in capsys.readouterr().err
    assert main(["label-reports", "--iu", str(cohorts[1]), "--model", str(model), "-q"]) == 2
    assert "evaluate-report-classifier" in capsys.readouterr().err
    assert main(["label-reports", str(cohorts[1]), "--model", str(cohorts[1]), "-q"]) == 2
    assert "not a report classifier" in capsys.readouterr().err


def test_an_archive_labelled_by_the_learned_labeller(trained, cohorts, tmp_path, capsys):
    """train-dp on an archive with --labeller: the training labels are the classifier's,
    and the summary records its ε; a folder that is no classifier stops before any work."""
    from updp_napari.cli import main
    from updp_napari.cohort.generate import read_ground_truth

    archive = tmp_path / "archive"
    shutil.copytree(cohorts[1], archive)
    (archive / "ground_truth.jsonl").unlink()
    model = trained / "eps-8"
    out = tmp_path / "models"
    assert main(["train-dp", str(archive), "--out", str(out), "--labeller", str(model),
                 "--epsilon", "inf", "--epochs", "1", "--batch", "6", "--size", "32",
                 "--json", "-q"]) == 0
    labeller = json.loads(capsys.readouterr().out)["prepared"]["labeller"]
    assert labeller["model"] == str(model)
    assert abs(labeller["epsilon_spent"] - 8.0) <= dp.EPSILON_TOLERANCE
    records = read_ground_truth(out / "work")
    assert len(records) == 14
    texts = [(archive / Path(r["image"]).parent.name / "report.txt").read_text(encoding="utf-8")
             for r in records]
    expected = rc.ReportClassifier.load(model).predict(texts) >= 0.5
    assert [[r["labels"][f] for f in FINDINGS] for r in records] == expected.astype(int).tolist()
    assert (rc.rule_predictions(texts) != expected).any()  # the rules would label otherwise
    assert main(["train-dp", str(archive), "--out", str(tmp_path / "m2"), "--labeller",
                 str(cohorts[1]), "--epsilon", "inf", "-q"]) == 2
    assert "not a report classifier" in capsys.readouterr().err


def test_command_errors_and_help(cohorts, encoder, tmp_path, capsys):
    from updp_napari.cli import main

    assert main(["train-report-classifier", str(cohorts[1]), "--out", str(tmp_path / "o"),
                 "--base", "scratch", "-q"]) == 2
    assert "--public" in capsys.readouterr().err
    assert main(["train-report-classifier", str(cohorts[1]), "--out", str(tmp_path / "o"),
                 "--base", str(encoder), "--delta", "0.5", "-q"]) == 2
    assert "above 1/(10·N)" in capsys.readouterr().err
    assert main(["evaluate-report-classifier", str(tmp_path), "--test", str(cohorts[1]),
                 "-q"]) == 2
    assert "made by updp train-report-classifier" in capsys.readouterr().err
    assert main(["evaluate-report-classifier", str(tmp_path), "-q"]) == 2
    assert "--test" in capsys.readouterr().err
    for name in ("pretrain-report-encoder", "train-report-classifier",
                 "evaluate-report-classifier"):
        with pytest.raises(SystemExit):
            main([name, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "LoRA" in text and "masked-language-model" in text and "MeSH" in text


def test_pretrain_command(cohorts, tmp_path, capsys):
    from updp_napari.cli import main

    out = tmp_path / "enc"
    assert main(["pretrain-report-encoder", str(cohorts[0]), "--out", str(out), "--vocab", "300",
                 "--hidden", "32", "--layers", "1", "--max-length", "64", "--epochs", "1",
                 "-q"]) == 0
    assert "held-out masked-token accuracy" in capsys.readouterr().out
    assert rc.read_encoder_card(out)["architecture"]["intermediate"] == 64
