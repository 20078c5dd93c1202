"""The application: the ``hardmine`` command line, image folders, the static HTML report and the demo.

Everything here may import every other part of hardmine; nothing outside :mod:`hardmine.app` imports it.
"""
