"""Tools on a saved run: its model (`run_model`), inspect, predict, export and the LR range test (`lr_find`)."""
