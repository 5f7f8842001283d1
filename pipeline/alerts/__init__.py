"""Alert sinks: compose (notifier) and deliver (hook) separately."""
