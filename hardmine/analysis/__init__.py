"""What people do with a score table.

- :mod:`hardmine.analysis.splitting`: positive/negative and easy/hard groups by a threshold.
- :mod:`hardmine.analysis.metrics`: confusion, precision/recall/F1, threshold sweeps, per-class and regression reports.
- :mod:`hardmine.analysis.dynamics`, :mod:`hardmine.analysis.labels`: training dynamics and label issues.
- :mod:`hardmine.analysis.io`, :mod:`hardmine.analysis.bigtable`: tables on disk, in memory and out of core.
- :mod:`hardmine.analysis.plot`, :mod:`hardmine.analysis.plot_dense`, :mod:`hardmine.analysis.interactive`: figures
  and the interactive report (matplotlib is imported by these only).
"""
