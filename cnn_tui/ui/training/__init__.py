"""The training screens (form, dashboard, results, runs), their widgets, modals and messages."""
