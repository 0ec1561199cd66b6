"""The trainer's system readings: the host, the trainer's processes and the GPUs (fake psutil and
NVML sources), the "system" event they make and read back, the sampler thread, and one real run
that writes them."""

from __future__ import annotations

import json
import threading
import types

import psutil
import pytest
from train_ui_fixtures import FakeNvml, system_events

from cnn_tui import text
from cnn_tui.training.config import TrainConfig
from cnn_tui.training.runs import store as runs
from cnn_tui.training.system import gpu_stats, reading, sampler
from cnn_tui.training.system.host_stats import HostMonitor
from cnn_tui.training.system.timeline import SystemTimeline
from cnn_tui.training.system.trainer_stats import TrainerMonitor

GIB = text.GIB


class FakeProcess:
    """A process of FakePsutil's table: pid -> (parent, rss, cpu %, name)."""

    def __init__(self, table: FakePsutil, pid: int) -> None:
        if pid not in table.rows:
            raise psutil.NoSuchProcess(pid)
        self.table, self.pid = table, pid

    def _row(self):
        if self.pid not in self.table.rows:
            raise psutil.NoSuchProcess(self.pid)
        return self.table.rows[self.pid]

    def parent(self):
        parent = self._row()[0]
        return None if parent is None else FakeProcess(self.table, parent)

    def children(self, recursive: bool = False):
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop(0)
            kids = [p for p, row in sorted(self.table.rows.items()) if row[0] == pid]
            found += [FakeProcess(self.table, kid) for kid in kids]
            todo += kids if recursive else []
        return found

    def memory_info(self):
        return types.SimpleNamespace(rss=self._row()[1])

    def cpu_percent(self, interval=None):
        return self._row()[2]

    def create_time(self):
        self._row()
        return 1000.0 + self.pid

    def name(self):
        return self._row()[3]


class FakePsutil:
    """The part of psutil the monitors use, over a table of processes (pid 10 is "this" one)."""

    def __init__(self, rows=None, *, cpu=37.5, fail_memory=False) -> None:
        self.rows = rows or {10: (1, 800 * text.MIB, 150.0, "python")}
        self.cpu, self.fail_memory = cpu, fail_memory
        self.cpu_calls = 0

    def Process(self, pid):  # noqa: N802 - psutil's name
        return FakeProcess(self, pid)

    def cpu_count(self, logical=True):
        return 16

    def cpu_percent(self, interval=None):
        self.cpu_calls += 1
        return self.cpu

    def virtual_memory(self):
        if self.fail_memory:
            raise OSError("no /proc/meminfo")
        return types.SimpleNamespace(total=64 * GIB, available=48 * GIB)


class FakeNvmlWithProcesses(FakeNvml):
    """GPU 0 runs the trainer (pid 10) and a process of another user (pid 4242, no memory
    figure); GPU 1 cannot list its processes."""

    def nvmlDeviceGetComputeRunningProcesses(self, handle):  # noqa: N802
        if handle == 1:
            raise RuntimeError("Not Supported")
        return [
            types.SimpleNamespace(pid=4242, usedGpuMemory=None),
            types.SimpleNamespace(pid=10, usedGpuMemory=20_000 * text.MIB),
        ]


# --- the monitors -------------------------------------------------------------------------------


def test_host_reading_is_cpu_over_all_cores_and_ram_in_use():
    source = FakePsutil()
    monitor = HostMonitor(source)
    assert source.cpu_calls == 1  # the first call starts the interval the first reading covers
    sample = monitor.sample()
    assert (sample.cpu_percent, sample.cpu_count) == (37.5, 16)
    assert sample.ram_used == 16 * GIB and sample.ram_total == 64 * GIB
    assert sample.ram_fraction == pytest.approx(0.25)
    broken = HostMonitor(FakePsutil(fail_memory=True)).sample()
    assert broken.ram_used is None and broken.ram_fraction is None and broken.cpu_count == 16


def test_trainer_memory_is_the_process_or_its_children_or_the_ranks_added_up():
    rows = {10: (1, 800 * text.MIB, 150.0, "python")}
    alone = TrainerMonitor(10, source=FakePsutil(rows)).sample()
    assert (alone.rss, alone.processes, alone.scope) == (800 * text.MIB, 1, "process")
    assert alone.cpu_percent == 150.0 and alone.pids == {10}

    # data-loader workers: this process and its children (and theirs)
    table = FakePsutil({**rows, 11: (10, 100 * text.MIB, 50.0, "pt_worker"), 12: (11, 1, 0, "x")})
    monitor = TrainerMonitor(10, source=table)
    table.rows[13] = (10, 200 * text.MIB, 90.0, "pt_worker")  # a worker started since
    withkids = monitor.sample()
    assert withkids.scope == "children" and withkids.processes == 4
    assert withkids.rss == (800 + 100 + 200) * text.MIB + 1
    assert withkids.cpu_percent == 200.0  # the new worker's CPU counts from the next reading
    del table.rows[11], table.rows[12]  # ended
    assert monitor.sample().processes == 2

    # torchrun: rank 0 (pid 10) adds up every rank its agent (pid 5) started on this host
    ranks = FakePsutil(
        {
            5: (1, 50 * text.MIB, 1.0, "torchrun"),
            10: (5, 800 * text.MIB, 100.0, "python"),
            20: (5, 700 * text.MIB, 100.0, "python"),
        }
    )
    both = TrainerMonitor(10, ranks=True, source=ranks).sample()
    assert (both.scope, both.processes, both.rss) == ("ranks", 2, 1500 * text.MIB)
    assert both.pids == {10, 20}  # (the agent itself is not the trainer)


def test_gpu_processes_are_listed_named_and_the_trainer_marked():
    monitor = TrainerMonitor(10, source=FakePsutil({10: (1, 1, 0.0, "python")}))
    gpus = gpu_stats.GpuMonitor(FakeNvmlWithProcesses())
    first, second = gpus.sample(monitor.describe)
    assert [(p.pid, p.name, p.trainer) for p in first.processes] == [
        (10, "python", True),  # the most GPU memory first
        (4242, None, False),  # not a process this machine sees: no name
    ]
    assert first.processes[0].used_memory_mb == 20_000 and first.processes[1].used_memory_mb is None
    assert second.processes == () and second.util_percent == 3  # the rest still read
    assert gpus.sample()[0].processes == ()  # (without a namer the processes are not read)


def test_in_a_container_the_gpus_pids_are_not_given_the_containers_names():
    # the trainer (pid 11 here) computes on GPU 0, but NVML lists the host's pids: its own is not
    # among them, and pid 10 inside the container is some other program
    table = FakePsutil({10: (1, 1, 0.0, "bash"), 11: (1, 800 * text.MIB, 100.0, "python")})
    monitors = sampler.Monitors(pid=11, psutil_source=table, nvml_source=FakeNvmlWithProcesses())
    assert monitors.read().gpus[0].processes[0].name == "bash"  # (a CPU run: nothing to check)
    monitors.cuda = True
    got = monitors.read()
    assert [p.name for p in got.gpus[0].processes] == [None, None]
    assert got.process_note == sampler.FOREIGN_PIDS
    event = json.loads(json.dumps({"event": "system", "time": got.time, **got.fields()}))
    assert reading.from_event(event) == got


# --- the event ----------------------------------------------------------------------------------


def fake_monitors(**kwargs) -> sampler.Monitors:
    return sampler.Monitors(
        pid=10, psutil_source=FakePsutil(), nvml_source=FakeNvmlWithProcesses(), **kwargs
    )


def test_a_reading_goes_through_the_event_log_and_back_unchanged():
    first = fake_monitors().read()
    event = json.loads(json.dumps({"event": "system", "time": first.time, **first.fields()}))
    assert event["cpu_percent"] == 37.5 and event["trainer_rss"] == 800 * text.MIB
    assert event["gpus"][0]["processes"][0] == {
        "pid": 10,
        "used_memory_mb": 20_000,
        "name": "python",
        "trainer": True,
    }
    assert reading.from_event(event) == first
    assert "gpu_note" not in event  # (only when there are no GPU readings)


def test_a_damaged_or_forged_event_reads_as_unknowns():
    assert reading.from_event({"event": "epoch", "time": 1.0}) is None
    assert reading.from_event({"event": "system"}) is None  # no time
    forged = {
        "event": "system",
        "time": 5.0,
        "host": "\x1b[2Jbox" * 100,
        "cpu_percent": "lots",
        "cpu_count": -3,
        "ram_used": float("nan"),
        "ram_total": True,
        "trainer_scope": "everything",
        "gpus": [{"index": i, "util_percent": 1e400, "processes": "none"} for i in range(99)]
        + ["garbage"],
    }
    got = reading.from_event(forged)
    assert got.machine.cpu_percent is None and got.machine.cpu_count is None
    assert got.machine.ram_used is None and got.machine.ram_total is None
    assert got.trainer.scope == "process" and got.trainer.processes == 0
    assert len(got.host) == reading.MAX_TEXT and len(got.gpus) == reading.MAX_GPUS
    assert got.gpus[0].util_percent is None and got.gpus[0].processes == ()
    error = reading.from_event({"event": "system", "time": 1.0, "error": "OSError: x"})
    assert error.error == "OSError: x" and error.machine.cpu_percent is None


# --- the sampler --------------------------------------------------------------------------------


def test_sampler_writes_readings_until_the_run_ends_and_survives_failures(tmp_path):
    log = runs.EventLog(tmp_path)
    calls = {"n": 0}
    monitors = fake_monitors()
    real_read = monitors.read

    def flaky_read():
        calls["n"] += 1
        if calls["n"] in (2, 3):  # the same error twice: written once
            raise RuntimeError("NVML went away")
        if calls["n"] == 5:
            log.emit("finished")  # the run ends: nothing more is written after it
        return real_read()

    monitors.read = flaky_read
    done = threading.Event()
    original = monitors.close
    monitors.close = lambda: (original(), done.set())
    worker = sampler.SystemSampler(log, interval=0.001, monitors=lambda: monitors)
    worker.start()
    from conftest import wait_for

    wait_for(lambda: calls["n"] >= 7, 30, "seven reading attempts")
    worker.stop()
    assert done.is_set()  # the monitors were closed (NVML shut down)
    log.close()
    kinds = [(e["event"], "error" in e) for e in runs.read_all_events(tmp_path)[0]]
    assert kinds == [("system", False), ("system", True), ("system", False), ("finished", False)]
    assert worker.errors == ["RuntimeError: NVML went away"] and worker.readings == 2


def test_a_short_run_has_a_first_reading_at_once_and_a_last_one_before_its_end(tmp_path):
    from conftest import wait_for

    log = runs.EventLog(tmp_path)
    worker = sampler.SystemSampler(log, interval=3600.0, monitors=fake_monitors)
    log.before_end = worker.last_reading  # (as the engine does)
    worker.start()
    wait_for(lambda: worker.readings == 1, 30, "the first reading, long before an interval")
    log.emit("epoch")
    log.emit("finished")  # the last reading is written before it, the thread is over
    assert worker.readings == 2 and not worker._thread.is_alive()
    log.emit("finished")  # (once only)
    worker.stop()
    log.close()
    kinds = [e["event"] for e in runs.read_all_events(tmp_path)[0]]
    assert kinds == ["system", "epoch", "system", "finished", "finished"]


def test_event_log_takes_one_event_at_a_time_from_two_threads(tmp_path):
    entered, release, second_done = threading.Event(), threading.Event(), threading.Event()

    def on_event(event: dict) -> None:
        if event["event"] == "epoch":  # the trainer's thread, in the middle of its event
            entered.set()
            release.wait(30)

    log = runs.EventLog(tmp_path, on_event)
    trainer = threading.Thread(target=log.emit, args=("epoch",))
    trainer.start()
    assert entered.wait(30)

    def sample() -> None:
        log.emit_while_running("system", cpu_percent=1.0)
        second_done.set()

    threading.Thread(target=sample).start()
    assert not second_done.wait(0.3)  # the sampler waits for the trainer's event to be done
    release.set()
    trainer.join(30)
    assert second_done.wait(30)
    log.close()
    events, unreadable = runs.read_all_events(tmp_path)
    assert unreadable == 0 and [e["event"] for e in events] == ["epoch", "system"]


@pytest.mark.usefixtures("one_torch_thread")
def test_a_real_run_writes_system_events_between_its_start_and_its_end(tmp_path, monkeypatch):
    from conftest import wait_for

    from cnn_tui.training.loop import engine

    monkeypatch.setattr(sampler, "SAMPLE_S", 0.02)
    evaluate = engine.evaluate
    run_dir = tmp_path / "run"

    def evaluate_after_a_reading(*args, **kwargs):  # (no race: the run waits for one reading)
        wait_for(lambda: '"system"' in (run_dir / runs.EVENTS_FILE).read_text(), 60, "a reading")
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(engine, "evaluate", evaluate_after_a_reading)
    config = TrainConfig(dataset="shapes", limit=120, batch_size=32, epochs=1, device="cpu")
    engine.train(config, run_dir)
    events = runs.read_all_events(run_dir)[0]
    kinds = [e["event"] for e in events]
    system = [e for e in events if e["event"] == "system"]
    assert kinds[0] == "run_started" and kinds[-1] == "finished"
    assert kinds.index("evaluated") > max(i for i, k in enumerate(kinds) if k == "system")
    first = reading.from_event(system[0])
    assert first.host == runs.processes.this_host()
    assert first.trainer.scope in ("process", "children") and first.trainer.rss > 50 * text.MIB
    assert first.machine.cpu_count == psutil.cpu_count() and first.machine.ram_total > 0
    assert first.gpus or first.gpu_note  # GPUs, or why there are none


# --- over the run: the timeline and the headless report ----------------------------------------


def test_timeline_keeps_a_bounded_series_and_the_mean_and_peak_of_every_reading():
    events = system_events(30, gpus=1)
    events[1]["ram_used"] = 60 * GIB  # a peak in a reading the charts' thinning drops
    timeline = SystemTimeline(max_points=8)
    assert not timeline.add([{"event": "epoch", "time": 1.0}])
    assert timeline.add(events) and timeline.count == 30
    assert len(timeline.readings) <= 8 and timeline.readings[0].time == events[0]["time"]
    kept = [reading.time for reading in timeline.readings]
    assert kept == sorted(kept) and events[1]["time"] not in kept
    assert timeline.stats["ram_used"].peak == 60 * GIB
    cpu = [e["cpu_percent"] for e in events]
    assert timeline.stats["cpu_percent"].mean == pytest.approx(sum(cpu) / 30)
    assert timeline.latest.time == events[-1]["time"] and timeline.hosts == ["gpu-node-7"]

    timeline.add([{"event": "system", "time": 1e10, "host": "gpu-node-7", "error": "boom"}])
    assert timeline.error.error == "boom" and timeline.count == 30  # (not a reading)
    timeline.add(system_events(1, gpus=1, start=2e10))
    assert timeline.error is None  # a later reading succeeded

    summary = timeline.summary()
    gpu = summary["gpus"][0]
    assert gpu["name"] == "NVIDIA H100 80GB HBM3" and gpu["memory_total_mb"] == 81_559.0
    assert gpu["util_percent"]["peak"] == max(e["gpus"][0]["util_percent"] for e in events)
    assert SystemTimeline().summary() is None


def test_the_headless_report_says_what_the_readings_say():
    from cnn_tui.commands.train_report import system_lines

    timeline = SystemTimeline()
    timeline.add(system_events(5, gpus=1, host="box\x1b[2J"))
    host, gpu = system_lines(timeline.summary())
    assert host.startswith("system on box\\x1b[2J (5 readings): CPU mean ")
    assert "of 16 cores · RAM peak " in host and "of 64.0 GiB · trainer RSS peak " in host
    assert gpu.startswith("GPU0 NVIDIA H100 80GB HBM3: util mean ") and "of 79.6 GiB" in gpu
    assert system_lines(None) == []
