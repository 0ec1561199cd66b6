"""The time left of a run and its speed, from the batch times measured so far (no torch).

The first batches of a session are slow for reasons that do not repeat: CUDA's context and
kernels, cuDNN's autotuning, torch.compile, the first touch of the data. An estimate made from
them is minutes off (a 1m13s run said `ETA 9m41s` after its first batch). So `EtaEstimator`:

- leaves out the first `WARMUP_BATCHES` batches of each session (a start, and a resume again);
- averages the batch times after those with an exponential moving average (`SMOOTHING`), so the
  estimate follows a real change of speed within a few dozen batches;
- clips each time at `OUTLIER_FACTOR` times the average before it counts, so one stalled batch
  (another job on the GPU, a page fault) moves the estimate by little;
- adds, per epoch still to run, the time an epoch spends outside its batches (validation and the
  checkpoint), measured once an epoch has ended.

It gives no estimate (None: shown as "estimating") until `MIN_SAMPLES` batches after the warm-up
were measured. The engine feeds it the times it measures; the tests feed it made-up ones.
"""

from __future__ import annotations

WARMUP_BATCHES = 3  # batches of each session that are not measured
MIN_SAMPLES = 5  # batches measured after the warm-up before an ETA is given
SMOOTHING = 0.1  # the weight of the newest batch in the moving average
OUTLIER_FACTOR = 4.0  # a batch time counts as at most this many times the average


class EtaEstimator:
    """Batch times in, the smoothed time per batch, the speed and the time left out."""

    def __init__(
        self,
        warmup: int = WARMUP_BATCHES,
        min_samples: int = MIN_SAMPLES,
        smoothing: float = SMOOTHING,
    ) -> None:
        self.warmup, self.min_samples, self.smoothing = warmup, min_samples, smoothing
        self.batches = 0  # batches seen in this session, warm-up included
        self.samples = 0  # batches measured after the warm-up
        self.batch_s: float | None = None  # the moving average of a batch's time
        self.images: float | None = None  # ... and of a batch's images
        self.epoch_overhead_s: float | None = None  # an epoch's time outside its batches

    def add_batch(self, seconds: float, images: int) -> None:
        """One batch of `images` took `seconds` (from the end of the batch before it)."""
        self.batches += 1
        if self.batches <= self.warmup or seconds <= 0:
            return
        self.samples += 1
        if self.batch_s is None or self.images is None:
            self.batch_s, self.images = seconds, float(images)
            return
        seconds = min(seconds, OUTLIER_FACTOR * self.batch_s)
        self.batch_s += self.smoothing * (seconds - self.batch_s)
        self.images += self.smoothing * (images - self.images)

    def add_epoch_overhead(self, seconds: float) -> None:
        """An epoch spent `seconds` besides its batches (validation, checkpoint): the latest
        counts for each epoch still to come."""
        self.epoch_overhead_s = max(0.0, seconds)

    @property
    def ready(self) -> bool:
        return self.samples >= self.min_samples and self.batch_s is not None

    def images_per_s(self) -> float | None:
        """The smoothed speed, once there is an estimate; None before."""
        if not self.ready or self.batch_s is None or self.images is None:
            return None
        return self.images / self.batch_s

    def eta_s(self, batches_left: int, epochs_left: int) -> float | None:
        """Seconds until the last of `batches_left` batches and the ends of `epochs_left` epochs
        (the current one included) are done; None while it is still estimating."""
        if not self.ready or self.batch_s is None:
            return None
        return batches_left * self.batch_s + epochs_left * (self.epoch_overhead_s or 0.0)
