"""Encode and decode a synthetic chord at every bandwidth, then save and reload the model.

Until the shipped default model lands, the model is built from a config with random weights, so the
decoded audio is noise: this shows the API, the code shapes and the bitrates, not the quality.
Run: python demos/quickstart.py [--model PATH_OR_HUB_ID]
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch

from encodec_fx import EncodecConfig, EncodecFeatureExtractor, EncodecModel


def chord(sampling_rate: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(sampling_rate * seconds)) / sampling_rate
    mono = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    return mono if channels == 1 else np.stack([mono] * channels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model directory, checkpoint or hub id (default: random 24 kHz model)")
    args = parser.parse_args()
    if args.model:
        model = EncodecModel.from_pretrained(args.model)
    else:
        torch.manual_seed(0)
        model = EncodecModel(EncodecConfig.encodec_24khz()).eval()
        for _, buffer in model.named_buffers():
            if buffer.dim() == 2:  # codebooks start at zero; give them values
                buffer.normal_()
    config = model.config
    extractor = EncodecFeatureExtractor.from_config(config)
    audio = chord(config.sampling_rate, 2.0, config.audio_channels)
    inputs = extractor(audio, sampling_rate=config.sampling_rate, return_tensors="pt")
    seconds = audio.shape[-1] / config.sampling_rate
    with torch.inference_mode():
        for bandwidth in config.target_bandwidths:
            encoded = model.encode(inputs["input_values"], inputs["padding_mask"], bandwidth=bandwidth)
            decoded = model.decode(encoded.audio_codes, encoded.audio_scales, inputs["padding_mask"],
                                   last_frame_pad_length=encoded.last_frame_pad_length)[0]
            frames = encoded.audio_codes.shape[-1] * encoded.audio_codes.shape[0] - encoded.last_frame_pad_length
            kbps = frames * encoded.audio_codes.shape[2] * config.codebook_nbits / seconds / 1000
            print(f"{bandwidth:>5g} kbps: codes {tuple(encoded.audio_codes.shape)}, {kbps:.2f} kbps of codes, "
                  f"decoded {tuple(decoded.shape)}")
    with tempfile.TemporaryDirectory() as directory:
        model.save_pretrained(directory)
        reloaded = EncodecModel.from_pretrained(directory)
        same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()))
        print(f"save_pretrained → from_pretrained: identical weights: {same}")


if __name__ == "__main__":
    main()
