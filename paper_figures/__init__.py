"""Analysis figures of pnd-theory: one module per figure, each with ``make(out_dir, quick, device)``.

Every figure writes PNG and PDF plus the data behind it (JSON) into ``out_dir``; the modules
compute everything through the public ``pnd_theory`` API and hold no mathematics of their own.
Run them all with ``pnd-theory figures`` (``--quick`` for a few minutes on a laptop CPU).
"""

#: figure name -> module, in the order of the README
FIGURES = {
    "objective": "paper_figures.fig1_objective",
    "singular_values": "paper_figures.fig2_singular_values",
    "correlation": "paper_figures.fig3_correlation",
    "equalization": "paper_figures.fig4_equalization",
    "monte_carlo": "paper_figures.fig5_monte_carlo",
    "width_condition": "paper_figures.fig6_width_condition",
    "deep_last_layer": "paper_figures.fig7_deep_last_layer",
    "pernodedrop_digits": "paper_figures.fig8_pernodedrop_digits",
    "gradient_noise": "paper_figures.fig_gradient_noise",
    "deep": "paper_figures.fig_deep",
    "implicit_explicit": "paper_figures.fig_implicit_explicit",
    "ydrop": "paper_figures.fig_ydrop",
    "sparsity": "paper_figures.fig_sparsity",
    "explicit_digits": "paper_figures.fig_explicit_digits",
    "iterates": "paper_figures.fig_iterates",
}
