"""The experiments floor: data sets and loaders, the distill / omit-class / sweep / LM jobs,
reports and plots."""

from . import data
from .data import load_dataset
from .distill_job import run_distill
from .lm import LMSetup, run_lm
from .setup import DistillSetup
from .temperature import temperature_table
from .userdata import load_teacher_logits, load_user_data, load_user_files
