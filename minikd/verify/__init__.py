"""The verification floor: finite-difference gradient checks, the library conventions and their
presets, golden vectors and the self-check of every loss."""

from . import gradcheck, vectors
from .conventions import CONVENTIONS, Convention, at_loss_as, kd_loss_as, rkd_loss_as
from .diagnosis import diagnose, diagnose_inputs
