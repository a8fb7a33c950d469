"""A reproducible training corpus of freely licensed audio for a 24 kHz mono codec.

    python -m training.corpus OUT_DIR [--hours H] [--seed S]
        [--sources speech,music,recordings,voices,mixtures] [--validation-percent 5]

Speech is synthesised (espeak-ng, and flite / festival when installed) from generated text; music is
rendered with fluidsynth and the Fluid GM sound font from generated MIDI and, when music21 is importable,
from the Bach chorales in its corpus; recordings are excerpts of music shipped in Debian packages; voices
are recorded words, letters and exclamations of real speakers from Debian packages, joined into utterances;
mixtures are speech over music. Every clip may get gain and reverb. Each clip goes to OUT_DIR/train or
OUT_DIR/validation by a hash of its source item, is listed in OUT_DIR/manifest.jsonl with its license, and
OUT_DIR/LICENSES.md sums it up. Everything is derived from --seed, so a rerun writes the same files.

SuperTuxKart's data, the ALSA and freedesktop sound files and recordings shipped inside Python packages are
reserved for independent evaluation: they are refused as sources. See docs/corpus.md.

Modules: `common` (clips, tools, licenses), `text` and `speech` (synthesised speech), `midi` and `music`
(rendered music), `recordings` (package recordings; the reserved sources), `voices` (real speakers),
`mixtures` (speech over music), `build` (augmentation, split, manifest, licenses, command line).
"""
