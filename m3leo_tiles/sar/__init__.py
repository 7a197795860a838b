"""Our own Sentinel-1 IW SLC processing (NumPy/Numba), on the geocoded-SLC principle.

Modules (import them directly; this package imports nothing heavy on its own):
- orbit: state-vector interpolation (annotation or EOF), mm-accurate;
- safe: SAFE metadata via xarray-sentinel, windowed rasterio pixel reads (folder or zip);
- geocode: float64 zero-Doppler back-geocoding, checked against ESA geolocation grids;
- geoid, dem: DEM heights onto tile grids, EGM2008 -> ellipsoid offline;
- calibrate: sigma0/beta0/gamma0 with thermal noise removal (separable LUTs);
- interferometry: coherence / interferogram block estimator and its bias;
- pipeline: process_pair / iter_pair / process_grd onto tile grids;
- trackgeom: incidence angles and layover/shadow per track.
"""
