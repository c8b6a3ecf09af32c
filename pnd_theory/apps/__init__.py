r"""Applications on top of the public API: the command line (:mod:`~pnd_theory.apps.cli`,
``pnd-theory``, one module per subcommand) and the Jupyter explorer (:mod:`~pnd_theory.apps.explorer`)."""
