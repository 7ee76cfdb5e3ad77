"""The interpreters: one module per trace type (jvp, batching, staging, partial_eval, transpose)."""
