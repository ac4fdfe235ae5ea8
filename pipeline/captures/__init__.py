"""Any capture in: COLMAP projects, nerfstudio data, photos and videos without poses, Auki jobs.

::

    capture = detect_layout(Path("my_scan"))          # which layout, and where its parts are
    result = train_capture(data, out_dir, RunConfig(), StageTracker(progress))

Modules: :mod:`~.detect` (layouts), :mod:`~.nerfstudio_data` (``transforms.json`` reader),
:mod:`~.sfm` (pycolmap structure from motion, the ``sfm`` extra), :mod:`~.prepare` (any layout →
``SceneData``), :mod:`~.train` (:func:`train_capture`), :mod:`~.alignment` (pose errors up to a
similarity).
"""
