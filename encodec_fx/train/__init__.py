"""Training the EnCodec codec (paper recipe): losses, MS-STFT discriminator, balancer, EMA quantiser."""

from .balancer import Balancer
from .checkpoint import load_checkpoint, save_checkpoint
from .discriminator import MultiScaleSTFTDiscriminator
from .export import export_generator, load_exported
from .losses import MultiScaleMelLoss, si_snr
from .quantizer import CodebookTraining, quantize_for_training, reset_codebooks
from .trainer import CodecTrainer, TrainingConfig, untrained_model

__all__ = ["Balancer", "CodebookTraining", "CodecTrainer", "MultiScaleMelLoss", "MultiScaleSTFTDiscriminator",
           "TrainingConfig", "export_generator", "load_checkpoint", "load_exported", "quantize_for_training",
           "reset_codebooks", "save_checkpoint", "si_snr", "untrained_model"]
