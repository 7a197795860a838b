"""Our own Sentinel-1 IW SLC processing (NumPy/Numba), on the geocoded-SLC principle.

Modules (import them directly; this package imports nothing heavy on its own), in the order
data flows:
- orbit: state-vector interpolation (annotation or EOF), mm-accurate;
- safe: SAFE metadata via xarray-sentinel (also across the ascending-node crossing);
- product: one opened IW SLC (windowed reads), pair/track checks;
- geocode: float64 zero-Doppler back-geocoding, checked against ESA geolocation grids;
- geoid, dem: DEM heights onto tile grids, EGM2008 -> ellipsoid offline;
- radargrid: tile grid -> (swath, burst, line, sample, range), exact nodes + interpolation;
- tops: the TOPS azimuth carrier (deramp / reramp, Doppler);
- kernels: windowed-sinc (complex) and bilinear (power) resampling kernels;
- calibrate, radiometry: sigma0/beta0/gamma0 with thermal noise removal;
- resample: one date onto one tile (complex SLC and backscatter from the same windows);
- stack: every date of a track onto a tile once; coherence / phase of any pair;
- tilepool: a call's tiles on several threads, each running the kernels alone;
- interferometry: coherence / interferogram block estimator and its bias;
- pipeline: process_pair / iter_pair / process_grd (the pair-level convenience API);
- trackgeom: incidence angles and layover/shadow per track;
- timing: per-stage wall time for the benchmarks.
"""
