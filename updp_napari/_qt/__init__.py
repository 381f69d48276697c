"""The napari review dock. The only package of updp-napari that imports Qt widgets.

From a notebook (napari running with the Qt event loop)::

    import napari
    from updp_napari._qt import ReviewWidget
    from updp_napari.review.session import ReviewSession

    viewer = napari.Viewer()
    widget = ReviewWidget(viewer, ReviewSession.open("ws", reviewer="ann"))
    viewer.window.add_dock_widget(widget, name="UPDP review", area="right")
"""

from .review_dock import ReviewWidget

__all__ = ["ReviewWidget"]
