"""The machine: devices, GPU statistics, host memory and background imports."""
