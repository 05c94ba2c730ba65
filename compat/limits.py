"""Every size, depth, count and time bound compat applies to input it did not write.

spec/oci.md lists these with their reasons; a test checks that the two agree. Numbers are
generous for honest input (the largest real index seen, NVIDIA's NGC multi-arch images, is a
few KB; an NFD spec a few KB) and small enough that hostile input costs little.
"""

MiB = 1 << 20

# Documents read whole into memory (registry bodies, layout blobs, local files).
MANIFEST_BYTES = 4 * MiB            # an image manifest or index (distribution's own limit is 4 MiB)
CONFIG_BYTES = 8 * MiB              # an image config blob
ARTIFACT_BYTES = 1 * MiB            # an NFD spec layer, a referrers tag index entry document
TOKEN_BYTES = 1 * MiB               # a token endpoint's answer
ERROR_BODY_BYTES = 64 * 1024        # the body of an error answer (only its message is shown)
AUTH_FILE_BYTES = 4 * MiB           # a credentials file (auth.json, config.json); real ones are a few KB
SCHEME_FILE_BYTES = 64              # a loopback registry's remembered scheme ("http" or "https")
HOST_FILE_BYTES = 16 * MiB          # --host profile / NodeFeature document
VARIANTS_FILE_BYTES = 4 * MiB       # annotate --variants FILE
SYSROOT_FILE_BYTES = 8 * MiB        # one file read below a sysroot (cpuinfo, os-release, ...)
PROBE_CACHE_BYTES = 1 * MiB          # ~/.cache/compat/probes.json (a few KB in practice)
RUNTIME_CONFIG_BYTES = 1 * MiB      # apptainer.conf / singularity.conf (the shipped file is ~12 KB)
RUNTIME_SCRIPT_BYTES = 256 * 1024   # a script runtime read for its version variable (enroot: ~20 KB)
ARCHSPEC_TABLE_BYTES = 2 * MiB      # ~/.cache/compat/archspec-targets-*.json (about 25 KB for archspec 0.2.7)
CONFIG_GZ_BYTES = 64 * MiB          # a decompressed /proc/config.gz
SYMLINK_HOPS = 40                   # symlinks followed resolving one sysroot path (Linux's MAXSYMLINKS)
PROFILE_CACHE_BYTES = 1 * MiB        # ~/.cache/compat/profile-<node>.json (tens of KB on a large node)
PROFILE_CACHE_ENTRIES = 8           # cached profiles per node (one per sysroot / --probe-tools / os.arch / venv)

# Structured documents (JSON or YAML) once parsed.
DOC_DEPTH = 64                      # nesting of objects and lists
DOC_NODES = 200_000                 # scalars + collections, YAML aliases counted expanded

# Host facts (schemas/host.schema.json states the same bounds; a test checks).
HOST_GPUS = 64                      # GPUs in one host (the largest nodes have 8-16; --assume gpu.count)
ASSUME_VALUE_CHARS = 1024           # one --assume value

# Annotation values.
RUNTIME_ITEMS = 64                  # names and version clauses in one org.hpc-compat.runtime (8 runtimes)

# Index walking.
INDEX_DEPTH = 4                     # nested indexes below the top one
CANDIDATES = 10_000                 # descriptors considered, after de-duplication by digest
NUMBER_DIGITS = 32                  # a JSON integer in a manifest (sizes fit in 20 digits); longer stays text

# SIF files (Apptainer/Singularity images; compat/oci/sif.py, spec/oci.md "SIF children").
SIF_DESCRIPTORS = 4096              # descriptor slots of one SIF (sylabs/sif creates 48; each is 585 bytes)
SIF_META_BYTES = 4 * MiB            # header + descriptor table read from the front of a SIF (the default layout ends at 32,176)
SIF_FILE_BYTES = 1 << 30            # a SIF annotate reads whole: to push it, or downloaded for --infer (as COPY_BLOB_BYTES)
SIF_SQUASHFS_FILES = 200_000        # inodes of a SIF's squashfs partition --infer extracts (unsquashfs -s)
SIF_SQUASHFS_BYTES = 4 << 30        # the uncompressed file bytes --infer may extract from one SIF (listing checked first)
SIF_UNSQUASHFS_S = 300              # seconds one unsquashfs run may take (--infer on a SIF)

# Time.
MAX_TIMEOUT_S = 86_400              # --timeout / COMPAT_TIMEOUT: beyond a day is a slip, not a wish

# HTTP framing from a registry (compat/oci/http.py).
HTTP_HEADER_BYTES = 64 * 1024       # all header lines of one answer together (and its trailers)
HTTP_HEADER_COUNT = 100             # header fields of one answer (distribution sends about 10)
HTTP_CHUNK_LINE_BYTES = 4096        # a chunk-size line with its extensions
HTTP_INTERIM_RESPONSES = 8          # 1xx answers before the real one (an endless 100 Continue)
HTTP_REDIRECTS = 5                  # redirects followed for one request (Go's client allows 10)
TLS_PROBE_S = 1.0                   # the TLS handshake tried on loopback after a plain answer that looked like TLS's
BLOB_BYTES = 64 * MiB               # Registry.get_blob's default: a blob read whole (larger layers: open_blob)
COPY_BLOB_BYTES = 1 << 30           # a layer copied by annotate (read whole, at most its declared size)

# annotate --infer: image layers are streamed, never held whole (spec/inference.md).
INFER_FILE_BYTES = 1 << 30          # an ELF file read from a layer (larger ones are reported, skipped)
INFER_MEMORY_BYTES = 8 * MiB        # an ELF member held in memory; a larger one is spooled to a temporary file
INFER_SCAN_BYTES = 256 * MiB        # a whole-file string search (version strings of libc, MPI, libcudart)
INFER_INFLATE_RATIO = 1032          # bytes out per compressed byte of a layer: deflate's own ceiling (zstd can go far past it)
INFER_INFLATE_FLOOR_BYTES = 256 * MiB  # a small layer may decompress to this much whatever its ratio
INFER_ZSTD_WINDOW_BYTES = 128 * MiB  # the window a zstd frame may ask the decoder for (zstd's own default limit)

# NFD rule templates (varsTemplate) and regular expressions.
TEMPLATE_BYTES = 64 * 1024          # NFD's own MaxTemplateSize: it refuses larger templates
TEMPLATE_DEPTH = 100                # nested actions/parentheses (deeper is no honest rule)
TEMPLATE_STEPS = 200_000            # nodes executed: nested ranges cannot multiply without end
TEMPLATE_OUTPUT_BYTES = 1 * MiB     # what one template may expand to

# Proxies.
PROXY_ANSWER_BYTES = 64 * 1024      # a proxy's answer to CONNECT (status line and headers; a few hundred bytes)

# Cluster plans (compat plan).
PLAN_NODES = 100_000                # nodes in one inventory (the largest clusters have ~10^4-10^5)
PLAN_SOURCE_BYTES = 64 * MiB        # one inventory file (scontrol --json of 10^5 nodes is ~50 MiB)
PLAN_TAR_MEMBERS = 100_000          # members of an inventory tarball
