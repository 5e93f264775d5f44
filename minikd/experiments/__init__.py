"""The experiments floor: data sets and loaders, the distill / omit-class / sweep / LM jobs,
reports and plots."""

from . import data
from .distill_job import DistillSetup, load_dataset, run_distill, temperature_table
from .lm import LMSetup, run_lm
