"""LightningModules: systems built from plain ``nn.Module``s (Lightning's rule).

One engine, ``systems.training.TrainingSystem``, trains K >= 1 cells as members of a
stack (``systems.stack``, ``systems.optimizer``). Nothing is imported here, so what
needs only the stack or the optimizers does not load Lightning.
"""
