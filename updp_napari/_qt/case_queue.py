"""The case queue: one row per case (id, status, scores), sortable, filtered by status."""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..review.scores import PRIVACY_ALERT, PRIVACY_MEANING, UTILITY_MEANING
from ..review.store import STATUSES

COLUMNS = ("case", "status", "privacy", "utility")
ALL = "all"


class _SortItem(QTableWidgetItem):
    """A cell shown as text and sorted by a key (numbers as numbers, blanks last)."""

    def __init__(self, text: str, key):
        super().__init__(text)
        self.key = key

    def __lt__(self, other):
        if isinstance(other, _SortItem):
            return self.key < other.key
        return super().__lt__(other)


ALERT = "#ff6060"


def _score_cell(value: float | None, alert: float | None = None, tip: str = "") -> _SortItem:
    """A score; shown in red below ``alert``."""
    if value is None:
        item = _SortItem("–", (1, 0.0))
    else:
        item = _SortItem(f"{value:.2f}", (0, float(value)))
        if alert is not None and value < alert:
            item.setForeground(QColor(ALERT))
    if tip:
        item.setToolTip(tip)
    return item


class CaseQueue(QWidget):
    """Emits ``case_chosen(case_id)`` when the reviewer picks a row."""

    case_chosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.status_filter = QComboBox()
        self.status_filter.addItems([ALL, *STATUSES])
        self.status_filter.setToolTip("show only the cases with this status; Next and "
                                      "Previous follow the filter")
        self.count = QLabel()
        top = QHBoxLayout()
        top.addWidget(QLabel("status:"))
        top.addWidget(self.status_filter, 1)
        top.addWidget(self.count)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # review order
        self.table.setMinimumHeight(110)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table)
        self._records = []
        self._filling = False
        self.status_filter.currentTextChanged.connect(self._on_filter)
        self.table.itemSelectionChanged.connect(self._on_selection)

    @property
    def status(self) -> str | None:
        """The status the queue is filtered by, or None for all."""
        text = self.status_filter.currentText()
        return None if text == ALL else text

    def set_cases(self, records, current: str | None = None) -> None:
        self._records = list(records)
        self._fill(current)

    def _fill(self, current: str | None) -> None:
        status = self.status
        shown = [r for r in self._records if status is None or r.status == status]
        self._filling = True
        table = self.table
        sorting = table.isSortingEnabled()
        table.setSortingEnabled(False)
        table.setRowCount(len(shown))
        for row, record in enumerate(shown):
            order = self._records.index(record)
            case = _SortItem(record.case_id, order)
            case.setData(Qt.ItemDataRole.UserRole, record.case_id)
            case.setToolTip(f"case {order + 1} of {len(self._records)} in review order"
                            + (f"\nfailed: {record.failure_reason}" if record.failure_reason else ""))
            table.setItem(row, 0, case)
            table.setItem(row, 1, _SortItem(record.status, (STATUSES.index(record.status), order)))
            table.setItem(row, 2, _score_cell(record.privacy_score, PRIVACY_ALERT, PRIVACY_MEANING))
            table.setItem(row, 3, _score_cell(record.utility_score, 1.0, UTILITY_MEANING))
        table.setSortingEnabled(sorting)
        self.count.setText(f"{len(shown)} of {len(self._records)}")
        self._filling = False
        self.select(current)

    def select(self, case_id: str | None) -> None:
        self._filling = True
        try:
            self.table.clearSelection()
            for row in range(self.table.rowCount()):
                item = self.table.item(row, 0)
                if item is not None and item.data(Qt.ItemDataRole.UserRole) == case_id:
                    self.table.selectRow(row)
                    self.table.scrollToItem(item)
                    break
        finally:
            self._filling = False

    def shown_cases(self) -> list[str]:
        """The case ids in the rows, top to bottom."""
        return [self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)
                for row in range(self.table.rowCount())]

    def row_of(self, case_id: str) -> dict | None:
        """What a row shows, for checks: ``{"case", "status", "privacy", "utility"}``."""
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == case_id:
                return {name: self.table.item(row, col).text() for col, name in enumerate(COLUMNS)}
        return None

    def _on_filter(self, _text: str) -> None:
        selected = self._selected()
        self._fill(selected)

    def _selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _on_selection(self) -> None:
        if self._filling:
            return
        case_id = self._selected()
        if case_id is not None:
            self.case_chosen.emit(case_id)
