"""Helpers every test package shares: polling (:mod:`tests.support.waiting`), random splats
(:mod:`tests.support.splats`) and the emulator fixtures (:mod:`tests.support.emulator`)."""
