"""Run storage: the one owner of a run folder (`store`), starting and following runs as processes (`launcher`) and the sweep queue (`sweeps`)."""
