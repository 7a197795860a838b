"""The report page: one self-contained HTML file that shows a region's store and runs.

`data` reads the store and its state (never writing either) into `ReportData`; `page` turns
that into the HTML file, with the page's script and style (`page.js`, `page.css`) inlined.
"""
