"""The napari docks and how they are launched: the only package of updp-napari that imports
Qt widgets. ``review_dock`` and ``audit_dock`` are the docks (napari.yaml names them);
``launch`` opens one in a napari window, on a virtual display when there is none, for the
command line and the review benchmark. Importing this package imports no Qt: the widgets
load when first asked for.

From a notebook (napari running with the Qt event loop)::

    import napari
    from updp_napari._qt import ReviewWidget
    from updp_napari.review.session import ReviewSession

    viewer = napari.Viewer()
    widget = ReviewWidget(viewer, ReviewSession.open("ws", reviewer="ann"))
    viewer.window.add_dock_widget(widget, name="UPDP review", area="right")
"""


def __getattr__(name: str):
    if name == "ReviewWidget":
        from .review_dock import ReviewWidget

        return ReviewWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ReviewWidget"]
