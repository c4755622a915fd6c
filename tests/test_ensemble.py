"""The seeds' models averaged into one detector: its logits, its geometry, its exact scans."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audioconv.models import Conv1dDetector, Ensemble, SpectrogramDetector
from audioconv.scan import scan_chunked, scan_naive, scan_whole
from scanning_helpers import SAMPLE_RATE, make_model, make_wave, one_thread  # noqa: F401 - one_thread is autouse

SMALL = {"conv2d_channels": [4, 8], "channels": 16}


def test_ensemble_gives_the_members_mean_probability_or_mean_logit():
    members = [make_model(SpectrogramDetector, seed=s, **SMALL) for s in (1, 2, 3)]
    wave = torch.from_numpy(make_wave(2 * SAMPLE_RATE))[None]
    with torch.no_grad():
        logits = torch.stack([m.eval()(wave) for m in members])
        assert not torch.allclose(logits[0], logits[1], atol=1e-3)  # the members differ
        soft = Ensemble(members).eval()(wave)
        mean_logit = Ensemble(members, combine="logits").eval()(wave)
    torch.testing.assert_close(torch.sigmoid(soft), torch.sigmoid(logits).mean(dim=0))
    torch.testing.assert_close(mean_logit, logits.mean(dim=0))
    assert Ensemble(members).hop == members[0].hop and Ensemble(members).receptive_field == members[0].receptive_field


def test_mean_probability_needs_every_member_to_be_sure():
    """One member sure (logit 30: float32 sigmoid is exactly 1) and one not: the mean probability stays
    near one half, finite; the mean logit would call it certain."""
    from audioconv.models.ensemble import mean_probability_logit

    logits = torch.tensor([[30.0, 30.0, -30.0], [-2.2, 30.0, -30.0]])
    combined = mean_probability_logit(logits)
    assert torch.isfinite(combined).all()
    torch.testing.assert_close(torch.sigmoid(combined[0]), 0.5 * (1 + torch.sigmoid(torch.tensor(-2.2))))
    assert combined[1] > 25 and combined[2] < -25
    assert logits.mean(dim=0)[0] > 13
    with pytest.raises(ValueError, match="combine"):
        Ensemble([make_model(SpectrogramDetector, seed=1, **SMALL)], combine="max")


def test_one_member_ensemble_is_that_member():
    member = make_model(SpectrogramDetector, seed=4, **SMALL)
    wave = make_wave(SAMPLE_RATE + 777)
    np.testing.assert_allclose(scan_whole(Ensemble([member]), wave), scan_whole(member, wave), atol=1e-6)


def test_ensemble_scans_agree_whole_chunked_and_window_by_window():
    """Same time layers in every member: frame i of each sees the same samples, so the scans stay exact."""
    ensemble = Ensemble([make_model(SpectrogramDetector, seed=s, **SMALL) for s in (5, 6)])
    wave = make_wave(3 * SAMPLE_RATE + 123, seed=2)
    whole = scan_whole(ensemble, wave)
    assert whole.size == ensemble.output_length(wave.size) > 0
    np.testing.assert_allclose(scan_chunked(ensemble, wave, chunk_seconds=1.1), whole, atol=1e-5)
    np.testing.assert_allclose(scan_naive(ensemble, wave), whole, atol=1e-5)


def test_members_of_another_geometry_are_refused():
    with pytest.raises(ValueError, match="member 1 has another time geometry"):
        Ensemble([make_model(SpectrogramDetector, seed=1, **SMALL), make_model(Conv1dDetector, seed=1, channels=16)])
    with pytest.raises(ValueError, match="member 1"):  # same model class, other dilations: frames would not line up
        Ensemble([make_model(SpectrogramDetector, seed=1, **SMALL),
                  make_model(SpectrogramDetector, seed=1, **SMALL, dilations=[1, 2, 4, 2])])
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([])


def test_ensemble_streams_exactly_with_one_state_per_member():
    """Pushed in pieces of any size (some too short to complete a frame), the stateful ensemble gives the
    whole-signal frames: every member takes every push into its own state, layer by layer."""
    from audioconv.streaming import StatefulScanner, streaming_copy

    from scanning_helpers import push_in_pieces

    ensemble = Ensemble([make_model(SpectrogramDetector, seed=s, **SMALL) for s in (7, 8)])
    wave = make_wave(2 * SAMPLE_RATE + 555, seed=3)
    scanner = StatefulScanner(ensemble)
    got = np.concatenate(push_in_pieces(scanner.push, wave, [1, 37, 160, 2500, 320, 7]))
    np.testing.assert_allclose(got, scan_whole(ensemble, wave), atol=1e-5)
    _, windows = streaming_copy(ensemble)
    _, member_windows = streaming_copy(ensemble.members[0])
    chain = [(w.span, w.stride) for w in member_windows]
    assert [(w.span, w.stride) for w in windows] == chain + chain  # each member streamed layer by layer, not re-run whole


def test_ensemble_exports_to_onnx_whole_and_stateful_stream(tmp_path):
    """Both ONNX graphs of an ensemble give its PyTorch frames: the whole-signal one, and the stateful
    stream with one set of window states per member, pushed in uneven pieces."""
    from audioconv import export
    from audioconv.onnx_backend import OnnxDetector, OnnxStatefulStream

    from scanning_helpers import push_in_pieces

    ensemble = Ensemble([make_model(SpectrogramDetector, seed=s, **SMALL) for s in (9, 10)])
    wave = make_wave(ensemble.receptive_field + 30 * ensemble.hop + 77, seed=4)
    reference = scan_whole(ensemble, wave)
    path = export.export_onnx(ensemble, {}, tmp_path / "ensemble.onnx")  # checked against PyTorch before it is written
    np.testing.assert_allclose(OnnxDetector(path).scores(wave), reference, atol=1e-4)
    single = export.StatefulStreamGraph(ensemble.members[0], 1280)
    graph = export.StatefulStreamGraph(ensemble, 1280)
    assert graph.leading_frames == single.leading_frames and len(graph.state_shapes) == 2 * len(single.state_shapes)
    runner = OnnxStatefulStream(export.onnx_stream_bytes(ensemble, {}, 1280))
    got = np.concatenate([*push_in_pieces(runner.push, wave, [1, 319, 1281, 4099, 20]), runner.flush()])
    np.testing.assert_allclose(got, reference, atol=1e-4)


def _saved(tmp_path, name: str, model, config: dict):
    from audioconv import checkpoints

    path = tmp_path / f"{name}.safetensors"
    checkpoints.save_detector(path, model, config, threshold=0.7)
    return path


def test_an_ensemble_of_checkpoints_saves_and_loads_as_one_file(tmp_path):
    from audioconv import checkpoints

    config = {"_target_": "audioconv.models.SpectrogramDetector", **SMALL}
    paths = [_saved(tmp_path, f"m{s}", make_model(SpectrogramDetector, seed=s, **SMALL), config) for s in (1, 2)]
    ensemble, info = checkpoints.load_ensemble(paths)
    assert isinstance(ensemble, Ensemble) and "threshold" not in info  # a member's operating point is not the ensemble's
    assert info["model_config"] == checkpoints.ensemble_config([config, config])
    one = _saved(tmp_path, "ensemble", ensemble, info["model_config"])
    again, again_info = checkpoints.load_detector(one)
    wave = make_wave(2 * SAMPLE_RATE, seed=5)
    np.testing.assert_allclose(scan_whole(again, wave), scan_whole(ensemble, wave), atol=1e-6)
    single, single_info = checkpoints.load_ensemble(paths[:1])
    assert isinstance(single, SpectrogramDetector) and single_info["threshold"] == 0.7


def test_shipped_members_join_an_ensemble_on_their_trained_scale(tmp_path):
    """A shipped file folds its temperature into its head; in an ensemble that temperature is undone, so the
    ensemble of shipped files is the ensemble of the networks they were made from."""
    from audioconv import checkpoints

    config = {"_target_": "audioconv.models.SpectrogramDetector", **SMALL}
    networks = [make_model(SpectrogramDetector, seed=s, **SMALL) for s in (1, 2)]
    trained = [_saved(tmp_path, f"t{s}", network, config) for s, network in zip((1, 2), networks)]
    shipped = []
    for s, temperature in ((1, 2.0), (2, 1.0)):
        network, _ = checkpoints.load_detector(trained[s - 1])
        network.divide_logits(temperature)
        path = tmp_path / f"shipped{s}.safetensors"
        checkpoints.save_detector(path, network, config, threshold=0.9, calibration={"temperature": temperature})
        shipped.append(path)
    wave = make_wave(2 * SAMPLE_RATE, seed=6)
    from_trained, _ = checkpoints.load_ensemble(trained)
    from_shipped, _ = checkpoints.load_ensemble(shipped)
    np.testing.assert_allclose(scan_whole(from_shipped, wave), scan_whole(from_trained, wave), atol=1e-6)
    alone, alone_info = checkpoints.load_ensemble(shipped[:1])  # one file is itself, calibrated
    assert alone_info["calibration"]["temperature"] == 2.0
    assert not np.allclose(scan_whole(alone, wave), scan_whole(from_trained.members[0], wave), atol=1e-3)


def test_an_ensemble_file_serves_the_api_and_the_figures(tmp_path):
    """The Python API (scores, events, live stream) and resolve_model take an ensemble file like a single one."""
    import audioconv
    from audioconv import checkpoints

    config = {"_target_": "audioconv.models.SpectrogramDetector", **SMALL}
    members = [_saved(tmp_path, f"m{s}", make_model(SpectrogramDetector, seed=s, **SMALL), config) for s in (1, 2)]
    ensemble, info = checkpoints.load_ensemble(members)
    path = _saved(tmp_path, "ensemble", ensemble, info["model_config"])
    detector = audioconv.load_detector(path, backend="torch", threshold=0.5)
    wave = make_wave(3 * SAMPLE_RATE, seed=8)
    np.testing.assert_allclose(detector.scores(wave, sample_rate=SAMPLE_RATE).probabilities, scan_whole(ensemble, wave),
                               atol=1e-5)
    live = detector.stream(sample_rate=SAMPLE_RATE)
    pushed = [event for piece in np.array_split(wave, 7) for event in live.push(piece)] + live.close()
    assert [(e.start, e.end) for e in pushed] == [(e.start, e.end) for e in detector.detect(wave, sample_rate=SAMPLE_RATE)]
    loaded = checkpoints.resolve_model(checkpoint=path)
    assert loaded.name == "spectrogram" and isinstance(loaded.model, Ensemble)


@pytest.mark.parametrize("config, reason", [
    ({"_target_": "audioconv.models.Ensemble", "members": []}, "non-empty list"),
    ({"_target_": "audioconv.models.Ensemble", "members": [{"_target_": "os.system"}]}, "unknown detector"),
    ({"_target_": "audioconv.models.Ensemble", "members": [{"_target_": "audioconv.models.Ensemble", "members": []}]},
     "not ensembles"),
    ({"_target_": "audioconv.models.Ensemble", "members": [{"_target_": "audioconv.models.Conv1dDetector"}],
      "extra": 1}, "one non-empty list"),
])
def test_ensemble_configs_build_only_this_packages_detectors(config, reason):
    from audioconv import checkpoints

    with pytest.raises(ValueError, match=reason):
        checkpoints.build_detector(config)


@pytest.mark.parametrize("combine", ["probabilities", "logits"])
def test_temperature_scales_the_combined_logit(combine):
    """Calibration divides the ensemble's own output by T (per member, a mean of probabilities would re-rank)."""
    from audioconv import calibrate

    ensemble = Ensemble([make_model(SpectrogramDetector, seed=s, **SMALL) for s in (3, 4)], combine=combine).eval()
    wave = torch.from_numpy(make_wave(2 * SAMPLE_RATE, seed=6))[None]
    with torch.no_grad():
        for member in ensemble.members:  # confident members: logits far past the ceiling
            member.divide_logits(0.05)
        before = ensemble(wave)
    temperature = calibrate.fold_temperature(ensemble, [wave[0].numpy()])
    assert temperature > 1.0
    with torch.no_grad():
        torch.testing.assert_close(ensemble(wave), before / temperature, rtol=1e-4, atol=1e-5)


def test_ship_model_refuses_members_whose_frames_do_not_line_up(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    from audioconv.models import Conv1dDetector

    spec = importlib.util.spec_from_file_location("ship_model", Path(__file__).parents[1] / "scripts" / "ship_model.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    paths = [_saved(tmp_path, "s", make_model(SpectrogramDetector, seed=1, **SMALL),
                    {"_target_": "audioconv.models.SpectrogramDetector", **SMALL}),
             _saved(tmp_path, "c", make_model(Conv1dDetector, seed=1, channels=16),
                    {"_target_": "audioconv.models.Conv1dDetector", "channels": 16})]
    code = script.main(["--checkpoint", *map(str, paths), "--name", "spectrogram", "--pooled-threshold", "0.9",
                        "--out", str(tmp_path / "weights")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and "another time geometry" in err and "\n" not in err
    assert not (tmp_path / "weights").exists()
