"""Training the EnCodec codec (paper recipe): losses, MS-STFT discriminator, balancer, EMA quantiser.

Public names are imported on first use: the command line reads the recipe's settings
(`encodec_fx.train.settings`) without importing torch."""

from entropy.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".balancer": ("Balancer",),
    ".checkpoint": ("load_checkpoint", "save_checkpoint"),
    ".discriminator": ("MultiScaleSTFTDiscriminator",),
    ".export": ("export_generator", "load_exported"),
    ".losses": ("MultiScaleMelLoss", "si_snr"),
    ".quantizer": ("CodebookTraining", "quantize_for_training", "reset_codebooks"),
    ".settings": ("TrainingConfig",),
    ".trainer": ("CodecTrainer", "untrained_model"),
})
