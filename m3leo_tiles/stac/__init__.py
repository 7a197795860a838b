"""A STAC Collection describing a store: `origins` (licences and citations of the data each
modality comes from), `collection` (building and writing it), `validate` (offline, against
the official schemas kept in `schemas/`)."""
