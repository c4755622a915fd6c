"""The pitch gate: a pitch tracker inside the detector's own receptive field, and each frame scored by the
warped copy its voice's pitch picks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audioconv.models import Conv1dDetector, PitchGated, SpectrogramDetector
from audioconv.models.base import run_branches
from audioconv.models.pitch_gate import ClipPitchWarp, FramePitch, GateRule, VoicePitch, trained_rule
from audioconv.scan import scan_chunked, scan_naive, scan_whole
from audioconv.warp_probe import warped_copy
from scanning_helpers import SAMPLE_RATE, make_model, make_wave, one_thread  # noqa: F401 - one_thread is autouse

SMALL = {"conv2d_channels": [4, 8], "channels": 16}


def buzz(f0: float, seconds: float, seed: int = 0, vibrato: float = 0.0) -> np.ndarray:
    """A voice-like buzz: harmonics of ``f0`` up to 4 kHz with falling amplitude, a little noise, optional vibrato."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + vibrato * np.sin(2 * np.pi * 5 * t))) / SAMPLE_RATE
    wave = sum(np.sin(k * phase) / k for k in range(1, int(4000 / f0) + 1))
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return (0.1 * wave / np.abs(wave).max() + 0.002 * noise).astype(np.float32)


@pytest.mark.parametrize("f0", [75.0, 110.0, 210.0, 340.0])
def test_the_tracker_hears_the_pitch_of_a_buzz(f0):
    tracker = FramePitch(720, 320)
    out = tracker(torch.from_numpy(buzz(f0, 1.0, vibrato=0.02))[None])[0]
    voiced, log2_f0 = out[0], out[1]
    assert voiced.mean() > 0.9
    estimate = 2 ** (log2_f0[voiced > 0].median().item())
    assert abs(estimate / f0 - 1) < 0.04  # no octave errors, a few percent of lag rounding at most


def test_the_fft_and_the_onnx_convolution_give_the_same_pitch():
    tracker = FramePitch(720, 320)
    wave = torch.from_numpy(np.concatenate([buzz(180.0, 0.7), make_wave(SAMPLE_RATE // 2)]))[None]
    by_fft = tracker(wave)
    tracker.dft_as_conv = True
    torch.testing.assert_close(tracker.power(wave), FramePitch(720, 320).power(wave), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(tracker(wave), by_fft)


def test_noise_and_silence_are_not_voiced():
    tracker = FramePitch(720, 320)
    noise = torch.from_numpy(np.random.default_rng(1).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1)[None]
    assert tracker(noise)[0, 0].mean() < 0.1
    assert tracker(torch.zeros(1, SAMPLE_RATE))[0, 0].sum() == 0


def test_the_pitch_branch_has_the_detectors_frames():
    model = make_model(SpectrogramDetector, seed=1, **SMALL)
    voice = VoicePitch(model.hop, model.receptive_field)
    assert (voice.hop, voice.receptive_field) == (model.hop, model.receptive_field)
    wave = torch.from_numpy(make_wave(2 * SAMPLE_RATE + 321))[None]
    assert voice(wave).shape == (1, 2, model.output_length(wave.shape[-1]))


def _gated(seed: int = 2) -> tuple[SpectrogramDetector, PitchGated]:
    model = make_model(SpectrogramDetector, seed=seed, **SMALL)
    return model, PitchGated(model, factors=(0.85, 1.0, 1.15)).eval()


@pytest.mark.parametrize("f0, factor", [(260.0, 0.85), (130.0, 1.0), (80.0, 1.15)])
def test_each_voice_is_scored_by_the_copy_its_pitch_picks(f0, factor):
    """(f0 / 130) ** -0.3: 260 Hz -> 0.81, nearest 0.85; 80 Hz -> 1.16, nearest 1.15."""
    model, gated = _gated()
    wave = buzz(f0, 2.5)
    np.testing.assert_allclose(scan_whole(gated, wave), scan_whole(warped_copy(model, factor), wave), atol=1e-6)
    if factor != 1.0:
        assert not np.allclose(scan_whole(gated, wave), scan_whole(model, wave), atol=1e-3)


def test_with_no_voice_the_gate_is_the_model_as_trained():
    model, gated = _gated(3)
    noise = np.random.default_rng(2).standard_normal(2 * SAMPLE_RATE).astype(np.float32) * 0.1
    np.testing.assert_allclose(scan_whole(gated, noise), scan_whole(model, noise), atol=1e-6)


def test_a_voice_that_changes_changes_the_choice_frame_by_frame():
    """High voice, then low voice: the early frames take the lowered copy, the late ones the raised one."""
    model, gated = _gated(4)
    wave = np.concatenate([buzz(280.0, 2.0), buzz(75.0, 2.0, seed=1)])
    with torch.no_grad():
        voice = gated.voice(torch.from_numpy(wave)[None])
        chosen = gated.choices(voice)[0].numpy()
    assert chosen[0] == 0 and chosen[-1] == 2 and set(np.unique(chosen)) <= {0, 1, 2}


def test_the_copies_share_one_fft_and_score_as_each_would_alone():
    """One framed FFT for all three copies at inference; the frames equal the copies run one by one."""
    _, gated = _gated(6)
    gated.divide_logits(1.7)  # a folded temperature, as the shipped gate has
    wave = torch.from_numpy(np.concatenate([buzz(250.0, 1.5), buzz(90.0, 1.5, seed=1)]))[None]
    ffts = []
    hooks = [m.frontend.spectrogram.register_forward_hook(lambda *_: ffts.append(1)) for m in gated.members]
    with torch.no_grad():
        shared = gated(wave)
        assert len(ffts) == 1 and gated.shares_magnitude()
        *logits, voice = run_branches(gated.branches, wave)  # each copy with its own FFT
        alone = gated.combine(logits, voice)
    assert len(ffts) == 1 + len(gated.members)
    for hook in hooks:
        hook.remove()
    torch.testing.assert_close(shared, alone, rtol=0, atol=1e-6)
    from audioconv.streaming import streaming_copy

    assert not streaming_copy(gated)[0].shares_magnitude()  # each copy's front end is a stateful window of its own
    assert not gated.train().shares_magnitude()  # training-mode members warp per clip: each keeps its own path


def test_gated_scans_agree_whole_chunked_window_by_window_and_streamed():
    from audioconv.streaming import StatefulScanner

    from scanning_helpers import push_in_pieces

    _, gated = _gated(5)
    wave = np.concatenate([buzz(250.0, 1.5), make_wave(SAMPLE_RATE + 123, seed=2), buzz(90.0, 1.5)])
    whole = scan_whole(gated, wave)
    assert whole.size == gated.output_length(wave.size) > 0
    np.testing.assert_allclose(scan_chunked(gated, wave, chunk_seconds=1.1), whole, atol=1e-5)
    np.testing.assert_allclose(scan_naive(gated, wave, hop=gated.hop * 7), whole[::7], atol=1e-5)
    scanner = StatefulScanner(gated)
    got = np.concatenate(push_in_pieces(scanner.push, wave, [1, 37, 160, 2500, 320, 7]))
    np.testing.assert_allclose(got, whole, atol=1e-5)


def test_gated_model_exports_to_onnx_whole_and_stateful_stream(tmp_path):
    from audioconv import export
    from audioconv.onnx_backend import OnnxDetector, OnnxStatefulStream

    from scanning_helpers import push_in_pieces

    _, gated = _gated(6)
    wave = np.concatenate([buzz(240.0, 1.2), buzz(95.0, 1.2, seed=3)])
    reference = scan_whole(gated, wave)
    path = export.export_onnx(gated, {}, tmp_path / "gated.onnx")
    np.testing.assert_allclose(OnnxDetector(path).scores(wave), reference, atol=1e-4)
    runner = OnnxStatefulStream(export.onnx_stream_bytes(gated, {}, 1280))
    got = np.concatenate([*push_in_pieces(runner.push, wave, [1, 319, 1281, 4099, 20]), runner.flush()])
    np.testing.assert_allclose(got, reference, atol=1e-4)


def test_a_gated_model_saves_and_loads_as_one_file(tmp_path):
    from audioconv import checkpoints

    config = {"_target_": "audioconv.models.SpectrogramDetector", **SMALL}
    _, gated = _gated(7)
    gated.divide_logits(2.0)
    path = tmp_path / "gated.safetensors"
    checkpoints.save_detector(path, gated, checkpoints.pitch_gated_config(config, gated), threshold=0.8)
    again, info = checkpoints.load_detector(path)
    assert isinstance(again, PitchGated) and again.settings == gated.settings and info["threshold"] == 0.8
    assert checkpoints.model_name(again) == "spectrogram"
    wave = np.concatenate([buzz(230.0, 1.5), buzz(85.0, 1.5)])
    np.testing.assert_allclose(scan_whole(again, wave), scan_whole(gated, wave), atol=1e-6)


def test_what_cannot_be_gated_is_refused():
    with pytest.raises(ValueError, match="mel front end"):
        PitchGated(make_model(Conv1dDetector, seed=1, channels=16))
    with pytest.raises(ValueError, match="mel front end"):
        PitchGated(make_model(SpectrogramDetector, seed=1, n_mels=0, **SMALL))
    with pytest.raises(ValueError, match="positive"):
        PitchGated(make_model(SpectrogramDetector, seed=1, **SMALL), factors=(0.0, 1.0))
    from audioconv import checkpoints

    with pytest.raises(ValueError, match="one single detector"):
        checkpoints.build_detector({"_target_": checkpoints.PITCH_GATED, "detector": {"_target_": checkpoints.ENSEMBLE}})


@pytest.mark.parametrize(("f0", "factor"), [(80.0, 1.15), (130.0, 1.0), (150.0, 1.0), (250.0, 0.85), (340.0, 0.85)])
def test_training_warps_each_clip_as_the_gate_would_warp_its_voice(f0, factor):
    warp = ClipPitchWarp()
    clips = torch.from_numpy(np.stack([buzz(f0, 1.2, seed=s) for s in range(2)]))
    assert warp(clips).tolist() == pytest.approx([factor, factor])


def test_a_clip_without_voice_is_not_warped():
    noise = np.random.default_rng(2).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    short_buzz = np.concatenate([buzz(300.0, 0.05), np.zeros(SAMPLE_RATE, dtype=np.float32)])  # < min_voiced frames
    assert ClipPitchWarp()(torch.from_numpy(np.stack([noise, short_buzz[:SAMPLE_RATE]]))).tolist() == [1.0, 1.0]


def test_pitch_warp_changes_training_only():
    """In training a high voice is heard through the filterbank warped by 0.85 (as the gate's copy would hear
    it); in eval mode, and in what it saves, the model is the plain detector."""
    quiet = {**SMALL, "dropout": 0.0, "freq_mask": 0, "time_mask": 0}
    plain = make_model(SpectrogramDetector, seed=3, **quiet)
    normalized = SpectrogramDetector(pitch_warp=True, **quiet)
    normalized.load_state_dict(plain.state_dict())
    assert normalized.state_dict().keys() == plain.state_dict().keys()
    wave = torch.from_numpy(np.stack([buzz(260.0, 1.5), buzz(120.0, 1.5, seed=1)]))
    plain.eval(), normalized.eval()
    torch.testing.assert_close(normalized(wave), plain(wave))
    lowered = warped_copy(plain, 0.85).train()
    plain.train(), normalized.train()
    assert normalized(wave).shape == plain(wave).shape
    # batch norm in training mode mixes the batch: compare each clip's front end instead of the logits
    by_pitch = normalized.pitch_warp(wave)
    assert by_pitch.tolist() == pytest.approx([0.85, 1.0])
    torch.testing.assert_close(normalized.frontend(wave, by_pitch)[0], lowered.features(wave)[0])
    torch.testing.assert_close(normalized.frontend(wave, by_pitch)[1], plain.features(wave)[1])
    with pytest.raises(ValueError, match="pitch_warp"):
        SpectrogramDetector(n_mels=0, pitch_warp=True)


def test_the_gate_rule_checks_its_arguments_once_for_gate_and_training():
    assert GateRule((1.15, 0.85, 1.0)).factors == (0.85, 1.0, 1.15) and GateRule((1.15, 0.85, 1.0)).unvoiced == 1
    for bad in [{"factors": ()}, {"factors": (0.0, 1.0)}, {"factors": (1.0, 1.0)}, {"reference_hz": 0.0},
                {"min_voiced": 0}]:
        with pytest.raises(ValueError):
            GateRule(**bad)
    with pytest.raises(ValueError, match="positive"):
        SpectrogramDetector(pitch_warp=True, pitch_warp_factors=(-0.5, 1.0), **SMALL)


def test_a_vtln_model_trains_and_is_gated_with_its_own_warps():
    """pitch_warp_factors reaches training (a 340 Hz voice goes to the lowest of four warps, 0.75, where the
    default three would give 0.85) and the gate the model belongs in (``trained_rule``); a model trained
    without VTLN belongs in the default gate."""
    four = (0.75, 0.85, 1.0, 1.15)
    model = SpectrogramDetector(pitch_warp=True, pitch_warp_factors=four, **SMALL)
    high = torch.from_numpy(np.stack([buzz(340.0, 1.2)]))
    assert model.pitch_warp(high).tolist() == pytest.approx([0.75])
    assert ClipPitchWarp()(high).tolist() == pytest.approx([0.85])
    assert trained_rule(model).factors == four and PitchGated(model, **trained_rule(model).settings).factors == list(four)
    assert trained_rule(make_model(SpectrogramDetector, seed=1, **SMALL)) == GateRule()
