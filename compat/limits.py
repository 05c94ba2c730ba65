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
HOST_FILE_BYTES = 16 * MiB          # --host profile / NodeFeature document
VARIANTS_FILE_BYTES = 4 * MiB       # annotate --variants FILE
SYSROOT_FILE_BYTES = 8 * MiB        # one file read below a sysroot (cpuinfo, os-release, ...)
CONFIG_GZ_BYTES = 64 * MiB          # a decompressed /proc/config.gz

# Structured documents (JSON or YAML) once parsed.
DOC_DEPTH = 64                      # nesting of objects and lists
DOC_NODES = 200_000                 # scalars + collections, YAML aliases counted expanded

# Index walking.
INDEX_DEPTH = 4                     # nested indexes below the top one
CANDIDATES = 10_000                 # descriptors considered, after de-duplication by digest

# Proxies.
PROXY_ANSWER_BYTES = 64 * 1024      # a proxy's answer to CONNECT (status line and headers; a few hundred bytes)
