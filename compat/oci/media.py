"""OCI and Docker media types compat reads."""

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

INDEXES = (OCI_INDEX, DOCKER_LIST)
IMAGE_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
MANIFESTS = INDEXES + IMAGE_MANIFESTS

#: distribution rejects a manifest request whose Accept lacks its exact type
ACCEPT = ", ".join(MANIFESTS)

#: Apptainer/Singularity SIF stored as an ORAS artifact (``apptainer push oras://``): the
#: manifest's config and its one layer (the whole SIF file)
SIF_CONFIG = "application/vnd.sylabs.sif.config.v1+json"
SIF_LAYER = "application/vnd.sylabs.sif.layer.v1.sif"


def is_sif(desc) -> bool:
    """An index entry that names a SIF artifact (its ``artifactType`` is the SIF config type)."""
    return isinstance(desc, dict) and desc.get("artifactType") == SIF_CONFIG
