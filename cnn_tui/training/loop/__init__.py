"""The training loop: the engine (set-up, epochs, evaluation, checkpoints), early stopping, metrics and several processes under torchrun (`distributed`)."""
