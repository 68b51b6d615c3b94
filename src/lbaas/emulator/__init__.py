"""The emulator's controls: reset, fault injection, task timing, health flips, journal, snapshots.

On when the provider that runs is ``noop`` (or with ``--emulator-controls``); see
docs/emulator.md. Only the composition roots (``lbaas.api``, ``lbaas.cli``) and the pytest
plugin (``lbaas.testing``) use this package.
"""
