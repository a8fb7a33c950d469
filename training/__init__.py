"""The maintainers' tooling, kept out of the installed package: users of the wheel never run it.

Run from the repository root, with the package installed (`pip install -e .`):

    python -m training.corpus OUT_DIR --hours 10      # build the training corpus (docs/corpus.md)
    python -m training.compact pack RUN_DIR FILE      # a run as one small resume checkpoint
    python -m training.ship RUN_DIR                   # install a trained codec (and LM) into encodec_fx/pretrained/

`encodec-fx train-codec` and `train-lm` are user features and stay in the package. This folder also
holds the default model's compact resume checkpoint, its training log (LOG.md) and the prepared GPU
session (gpu_run.sh, pack_gpu_corpus.py); see docs/training.md.
"""
