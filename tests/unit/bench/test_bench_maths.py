"""The benchmark's pure parts: FLOP/roofline maths, stats, target checks, corpus, int8 rules."""

from __future__ import annotations

import json

import pytest

from builder.quantize import GATE, kept_fp32
from bench import report, roofline
from bench.corpus import load_sentences, split_sentences
from bench.report import targets
from bench.stats import Run, baseline_for, percentile_ms, ratio
from tests.helpers import minilm_checkpoint


def test_minilm_flops_per_token_by_hand() -> None:
    config = json.loads((minilm_checkpoint() / "config.json").read_text())
    (tower,) = roofline.towers(config)
    d, ff, layers, seq = 384, 1536, 6, 29
    by_hand = layers * (2 * (4 * d * d + 2 * d * ff) + 4 * seq * d)
    assert tower.flops_per_token(seq) == by_hand == 21_500_928
    assert tower.params == layers * (4 * d * d + 2 * d * ff) + 30522 * d


def test_decoder_with_grouped_query_attention_and_swiglu() -> None:
    config = {"model_type": "qwen3", "hidden_size": 64, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 32, "intermediate_size": 128,
              "num_hidden_layers": 2, "vocab_size": 100}
    (tower,) = roofline.towers(config)
    # q and o: 64 x 128 each; k and v: 64 x 64 each; gate, up, down: 64 x 128 each.
    assert tower.layer_params == 2 * 64 * 128 + 2 * 64 * 64 + 3 * 64 * 128
    causal_scores = 2 * 2 * (10 / 2) * 4 * 32
    assert tower.flops_per_token(10) == 2 * (2 * tower.layer_params + causal_scores)


def test_clip_has_two_towers_and_counts_patches() -> None:
    tower = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64,
             "num_hidden_layers": 2}
    config = {"model_type": "clip", "text_config": {**tower, "vocab_size": 50},
              "vision_config": {**tower, "image_size": 336, "patch_size": 14}}
    text, vision = roofline.towers(config)
    assert (text.name, text.causal, vision.name, vision.causal) == ("text", True, "vision", False)
    assert roofline.vision_tokens(config) == 24 * 24 + 1


def test_unknown_model_type_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'gpt_neox'"):
        roofline.towers({"model_type": "gpt_neox"})


def test_roofline_is_memory_bound_at_batch_one_and_compute_bound_when_large() -> None:
    tower = roofline.Tower("text", 24, 1024, 16, 16, 64, 4096, vocab=30522)
    peak, bandwidth = 989e12, 3.35e12
    small = roofline.roofline(tower, 1, 16, peak, bandwidth)
    large = roofline.roofline(tower, 256, 512, peak, bandwidth)
    assert small.bound == "memory" and large.bound == "compute"
    assert small.seconds == pytest.approx(small.bytes / bandwidth)
    assert large.tokens_per_s == pytest.approx(peak / tower.flops_per_token(512))
    assert large.intensity > peak / bandwidth > small.intensity
    assert roofline.fraction_of_peak(1000, 2e9, 4e12) == pytest.approx(0.5)


def _run(system: str, size: int, concurrency: int, tokens_per_s: float,
         latencies: tuple[float, ...] = (), precision: str = "fp32") -> Run:
    return Run(system, "x", precision, size, concurrency, 10, int(tokens_per_s), 1.0, latencies)


def test_stats_percentiles_ratios_and_baselines() -> None:
    assert percentile_ms([0.001, 0.002, 0.003], 50) == pytest.approx(2.0)
    assert ratio(3.0, 2.0) == 1.5 and ratio(None, 2.0) is None and ratio(1.0, 0) is None
    runs = [_run("a", 0, 1, 100), _run("a", 1, 1, 10, (0.02,)), _run("c", 32, 16, 200)]
    assert baseline_for(runs[2], runs) is runs[0]  # no 32-sentence (a) run: the throughput one
    assert baseline_for(_run("c", 1, 16, 1), runs) is runs[1]


def test_targets_say_met_and_missed() -> None:
    runs = [_run("a", 0, 1, 1000), _run("b", 0, 1, 2000), _run("b", 1, 1, 500, (0.006,)),
            _run("c", 1, 16, 1900), _run("c", 32, 16, 1400), _run("c", 1, 1, 400, (0.0075,)),
            _run("c", 1, 16, 2100, precision="int8")]
    lines = targets(runs)
    assert "1.90× (target ≥ 1.50×) **met**" in lines[0]
    assert "0.95× (target ≥ 0.90×) **met**" in lines[1]
    assert "0.70× (target ≥ 0.90×) **missed**" in lines[3]
    assert "1.50 ms (target ≤ 2.00 ms) **met**" in lines[4]
    assert "2.10× (target ≥ 2.00×) **met**" in lines[5]


def test_sentence_splitting_and_the_real_corpus() -> None:
    text = ('The minister said "we will not resign." Then he left the room! '
            'Is it true at 4:00pm? Yes. The storm moved east across the mountains.')
    assert split_sentences(text) == [
        'The minister said "we will not resign."', "Then he left the room!",
        "Is it true at 4:00pm?", "The storm moved east across the mountains."]  # "Yes." dropped
    sentences = load_sentences()
    assert len(sentences) > 2000 and len(set(sentences)) == len(sentences)
    assert all(s[0].isupper() or s[0] in "\"'0123456789" for s in sentences[:200])


def test_int8_keeps_first_and_last_mlp_down_projections() -> None:
    names = [f"/body/encoder/layer.{i}/{part}/MatMul" for i in range(3)
             for part in ("attention/output/dense", "intermediate/dense", "output/dense")]
    assert kept_fp32(names) == ["/body/encoder/layer.0/output/dense/MatMul",
                                "/body/encoder/layer.2/output/dense/MatMul"]
    assert kept_fp32(["/model/layers.7/mlp/down_proj/MatMul"]) == [
        "/model/layers.7/mlp/down_proj/MatMul"]
    assert kept_fp32(["/x/MatMul"]) == []


@pytest.mark.parametrize(("min_cos", "mean_cos", "passes"), [
    (0.98, 0.992, True), (0.97, 0.99, True), (0.969, 0.995, False), (0.99, 0.989, False)])
def test_int8_gate_thresholds(min_cos: float, mean_cos: float, passes: bool) -> None:
    assert (GATE.failure(min_cos, mean_cos) is None) is passes


def _round_run(system: str, precision: str, size: int, concurrency: int, tokens_per_s: float,
         round_: int) -> Run:
    return Run(system, f"{system} {size} {concurrency}", precision, size, concurrency, 10,
               int(tokens_per_s), 1.0, round=round_)


def test_target_ratios_are_taken_within_rounds_then_the_median() -> None:
    runs = [_round_run("a", "fp32", 0, 1, 1000, 0), _round_run("c", "fp32", 1, 16, 9999, 0)]  # main pass
    for n, (a, c) in enumerate([(1000, 1600), (500, 700), (2000, 3100)], start=1):
        runs += [_round_run("a", "fp32", 0, 1, a, n), _round_run("c", "fp32", 1, 16, c, n)]
    ratios = report.round_ratios(runs, ("c", "fp32", 1, 16), ("a", "fp32", 0, 1))
    assert ratios == [1.6, 1.4, 1.55]
    line = next(t for t in report.targets(runs) if t.startswith("- server fp32, concurrency 16, "
                                                                 "1-sentence requests vs (a)"))
    assert line.startswith("- server fp32, concurrency 16, 1-sentence requests vs (a) "
                           "tokens/s: 1.55× (median of 3 rounds: 1.60×, 1.40×, 1.55×)")
    assert line.endswith("**met**")
    table = report.rounds_table(runs)
    assert table[0] == "| | run | precision | round 1 | round 2 | round 3 |"
    assert table[2] == "| a | a 0 1 | fp32 | 1,000 tokens/s | 500 tokens/s | 2,000 tokens/s |"


def test_without_rounds_the_main_pass_gives_the_ratio() -> None:
    runs = [_round_run("a", "fp32", 0, 1, 1000, 0), _round_run("c", "fp32", 1, 16, 1200, 0)]
    assert report.round_ratios(runs, ("c", "fp32", 1, 16), ("a", "fp32", 0, 1)) == [1.2]
    assert report.rounds_table(runs) == []


def test_one_sentence_gap_splits_http_from_batch_size() -> None:
    runs = []
    for n, (whole, callers, server) in enumerate([(2000, 1800, 1620), (1000, 800, 760)], start=1):
        runs += [_round_run("b", "fp32", 0, 1, whole, n), _round_run("b", "fp32", 1, 16, callers, n),
                 _round_run("c", "fp32", 1, 16, server, n)]
    lines = report.one_sentence_gap(runs, 42_467_328)
    assert lines[2] == ("- HTTP: the server at concurrency 16 vs (b) fed by 16 concurrent "
                        "one-sentence callers without HTTP: 0.93× (0.90×, 0.95×).")
    assert lines[3].startswith("- Batch size: those 16 callers vs (b) on the whole corpus: "
                               "0.85× (0.90×, 0.80×).")
    assert "(42 MB) from memory" in lines[3]
    assert report.one_sentence_gap(runs[:1], 1) == []


def _latency_run(system: str, p50_ms: float, round_: int) -> Run:
    return Run(system, f"{system} latency", "fp32", 1, 1, 3, 30, 0.03,
               (p50_ms / 1000 - 0.001, p50_ms / 1000, p50_ms / 1000 + 0.001), round=round_)


def test_latency_target_is_the_median_of_per_round_deltas() -> None:
    main = [_latency_run("c", 30.0, 0), _latency_run("b", 10.0, 0)]  # minutes apart: ignored
    rounds = [_latency_run(s, p, n) for n, pair in enumerate([(12.0, 10.5), (9.0, 8.5),
                                                             (14.0, 11.0)], start=1)
              for s, p in zip("cb", pair)]
    deltas = report.p50_deltas(main + rounds, ("c", "fp32", 1, 1), ("b", "fp32", 1, 1))
    assert deltas == pytest.approx([1.5, 0.5, 3.0])
    line = next(t for t in report.targets(main + rounds) if t.startswith("- single"))
    assert "1.50 ms (median of 3 rounds: 1.50 ms, 0.50 ms, 3.00 ms)" in line
    assert line.endswith("**met**")
    assert report.p50_deltas(main, ("c", "fp32", 1, 1), ("b", "fp32", 1, 1)) == [20.0]
    assert report.rounds_table(rounds)[2] == "| c | c latency | fp32 | p50 12.0 ms | p50 9.0 ms | p50 14.0 ms |"
