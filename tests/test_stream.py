"""The model's one stream interface (`model.stream_encoder`/`stream_decoder`): the same contract for the
causal and the chunked model, and the stream equals the whole input's codes and audio."""

from __future__ import annotations

import pytest
import torch

from encodec_fx.stream import CodeBlock, StreamDecoder, StreamEncoder, stream_latency

from effects_models import noise, tiny_model

SIZES = [1000, 1, 333, 0, 4096, 7, 2500]


def blocks_of(audio: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    blocks, start = [], 0
    while start < audio.shape[-1]:
        for size in sizes:
            blocks.append(audio[..., start: start + size])
            start += size
    return blocks


@pytest.mark.parametrize("preset", ["24khz", "48khz"])
@pytest.mark.parametrize("frames_per_step", [1, 3])
def test_a_stream_gives_the_whole_inputs_codes_and_audio(preset, frames_per_step):
    model = tiny_model(preset)
    if preset == "48khz" and frames_per_step > 1:
        with pytest.raises(ValueError, match="streams by whole"):
            model.stream_encoder(1.5 if preset == "24khz" else 3.0, frames_per_step)
        return
    bandwidth = model.config.target_bandwidths[1]
    audio = torch.from_numpy(noise(2, model.config.audio_channels, int(1.7 * model.config.sampling_rate)))
    encoder = model.stream_encoder(bandwidth, frames_per_step)
    coded = [encoder.push(block) for block in blocks_of(audio, SIZES)] + [encoder.flush()]
    joined = CodeBlock.join(coded)
    whole = model.encode(audio, bandwidth=bandwidth)
    assert joined.chunked == (model.config.chunk_length is not None)
    rows = list(joined.rows)  # model.encode pads the last chunk to whole frames and says by how much
    rows[-1] = torch.nn.functional.pad(rows[-1], (0, whole.last_frame_pad_length))
    assert torch.equal(torch.stack(rows), whole.audio_codes)
    if model.config.normalize:
        assert torch.equal(torch.stack(joined.scales), torch.cat([s.view(1, -1) for s in whole.audio_scales]))
    decoder = model.stream_decoder()
    decoded = torch.cat([decoder.push(block) for block in coded] + [decoder.flush()], dim=-1)
    reference = model.decode(whole.audio_codes, whole.audio_scales,
                             last_frame_pad_length=whole.last_frame_pad_length).audio_values
    assert decoded.shape[-1] >= audio.shape[-1]
    # the stream sums the same terms grouped by block: float32 rounding of the output's scale
    tolerance = 64 * torch.finfo(torch.float32).eps * reference.abs().max()
    assert (decoded[..., : reference.shape[-1]] - reference).abs().max() <= tolerance


@pytest.mark.parametrize("preset", ["24khz", "48khz"])
def test_the_decoded_stream_never_lags_more_than_the_latency(preset):
    model = tiny_model(preset)
    encoder, decoder = model.stream_encoder(), model.stream_decoder()
    assert encoder.latency == stream_latency(model) > 0
    audio = torch.from_numpy(noise(1, model.config.audio_channels, 3 * model.config.chunk_length
                                   if model.config.chunk_length else 8000))
    received = produced = 0
    for block in blocks_of(audio, [1]) if preset == "24khz" else blocks_of(audio, [997]):
        received += block.shape[-1]
        produced += decoder.push(encoder.push(block)).shape[-1]
        assert received - produced <= encoder.latency
        assert produced <= received or preset == "48khz"


def test_the_bandwidth_may_change_between_pushes():
    model = tiny_model("24khz")
    low, high = model.config.target_bandwidths[0], model.config.target_bandwidths[-1]
    encoder = model.stream_encoder(low)
    audio = torch.from_numpy(noise(1, 1, 3200))
    first = encoder.push(audio[..., :1600])
    encoder.bandwidth = high
    second = CodeBlock.join([encoder.push(audio[..., 1600:]), encoder.flush()])
    assert first.rows[0].shape[1] == model.num_quantizers_for_bandwidth(low)
    assert second.rows[0].shape[1] == model.num_quantizers_for_bandwidth(high)
    with pytest.raises(ValueError, match="bandwidth"):
        encoder.bandwidth = 5.5


@pytest.mark.parametrize("preset", ["24khz", "48khz"])
def test_lost_tokens_add_nothing_in_the_stream_as_in_a_whole_decode(preset):
    from encodec_fx.partial_decode import decode_received
    model = tiny_model(preset)
    bandwidth = model.config.target_bandwidths[-1]
    audio = torch.from_numpy(noise(1, model.config.audio_channels, model.config.sampling_rate))
    encoder = model.stream_encoder(bandwidth)
    coded = CodeBlock.join([encoder.push(audio), encoder.flush()])
    generator = torch.Generator().manual_seed(0)
    received = tuple(torch.rand(row.shape, generator=generator) > 0.3 for row in coded.rows)
    decoder = model.stream_decoder()
    lossy = CodeBlock(coded.rows, coded.scales, coded.chunked, coded.batch, received)
    streamed = torch.cat([decoder.push(lossy), decoder.flush()], dim=-1)
    pad = coded.rows[0].shape[-1] - coded.rows[-1].shape[-1]
    pad_rows = [torch.nn.functional.pad(row, (0, pad if index == len(coded.rows) - 1 else 0))
                for index, row in enumerate(coded.rows)]
    pad_masks = [torch.nn.functional.pad(mask, (0, pad if index == len(received) - 1 else 0))
                 for index, mask in enumerate(received)]
    scales = [None] * len(coded.rows) if coded.scales is None else [scale.view(-1, 1) for scale in coded.scales]
    whole = decode_received(model, torch.stack(pad_rows), torch.stack(pad_masks), scales, pad, streamed.shape[-1])
    tolerance = 64 * torch.finfo(torch.float32).eps * whole.abs().max()
    assert (streamed[..., : whole.shape[-1]] - whole).abs().max() <= tolerance


def test_the_stream_classes_are_what_the_model_hands_out():
    model = tiny_model("24khz")
    assert isinstance(model.stream_encoder(), StreamEncoder) and isinstance(model.stream_decoder(), StreamDecoder)


def test_each_value_is_checked_once_at_each_door(monkeypatch):
    """The effect checks its bandwidth and frames_per_step when made, the model's stream once when it
    starts; the encoders inside trust them, and an unchanged bandwidth is not checked again per block."""
    import numpy as np

    import encodec_fx.stream
    import encodec_fx.streaming
    from encodec_fx import EncodecModel
    from encodec_fx.effects import EncodecCompressor
    checks = {"bandwidth": 0, "frames_per_step": 0}
    resolve = EncodecModel.num_quantizers_for_bandwidth
    check_frames = encodec_fx.streaming.check_frames_per_step

    def counted_bandwidth(self, bandwidth=None):
        checks["bandwidth"] += 1
        return resolve(self, bandwidth)

    def counted_frames(frames_per_step):
        checks["frames_per_step"] += 1
        return check_frames(frames_per_step)

    monkeypatch.setattr(EncodecModel, "num_quantizers_for_bandwidth", counted_bandwidth)
    monkeypatch.setattr(encodec_fx.stream, "check_frames_per_step", counted_frames)
    monkeypatch.setattr(encodec_fx.streaming, "check_frames_per_step", counted_frames)
    model = tiny_model("24khz")
    compressor = EncodecCompressor(model.config.target_bandwidths[1], model=model, frames_per_step=2)
    assert checks == {"bandwidth": 1, "frames_per_step": 1}
    audio = np.zeros((2, 4000), np.float32)
    for start in range(0, 4000, 1000):
        compressor(audio[:, start: start + 1000], 44_100, reset=False)
    assert checks == {"bandwidth": 2, "frames_per_step": 2}
    compressor.bandwidth = model.config.target_bandwidths[0]
    compressor(audio[:, :1000], 44_100, reset=False)
    assert checks == {"bandwidth": 3, "frames_per_step": 2}
