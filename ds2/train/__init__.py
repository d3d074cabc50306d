"""Training: the loop (trainer.py: `ds2 train`), and beside it what the loop reads (data.py),
its loss (loss.py), LR schedule (schedule.py), distributed set-up and reductions
(distributed.py), dev evaluation (evaluate.py), bad-data bookkeeping (bad_data.py), the
largest-batch check (memory.py), the experiment folder (experiment.py), checkpoint averaging
(average.py: `ds2 average`) and the learning curves (plot.py). Checkpoint files are
ds2.checkpoint's; data filtering and augmentation are ds2.data's."""
