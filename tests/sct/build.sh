#!/usr/bin/env bash
# Fetches and builds the UEFI SCT (tianocore/edk2-test) for X64 with GCC.
# See tests/sct/README.md.
#
#   tests/sct/build.sh [dir]      # dir defaults to /work/sct
#
# Leaves the SCT tree run.sh uses in
#   <dir>/ws/Build/UefiSct/RELEASE_GCC/SctPackageX64/X64
# Sources already present under <dir> are reused, so a second call only
# rebuilds. The remotes can be overridden (e.g. with local mirrors):
# EDK2_TEST_URL, EDK2_URL, BROTLI_URL.
set -euo pipefail

dir="${1:-/work/sct}"
edk2_test_rev=17bf62e0302770f27ecdd0267d566d4d386b6137   # the SCT issue 16 cites
edk2_tag=edk2-stable202605   # new enough for the SCT's "GCC" toolchain tag (build.sh at 17bf62e)
edk2_test_url="${EDK2_TEST_URL:-https://github.com/tianocore/edk2-test}"
edk2_url="${EDK2_URL:-https://github.com/tianocore/edk2}"
brotli_url="${BROTLI_URL:-https://github.com/google/brotli}"

missing=()
for p in nasm acpica-tools uuid-dev build-essential python3 mtools dosfstools gdisk qemu-system-x86 ovmf; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build.sh: missing Debian packages: ${missing[*]} (apt-get install them)" >&2
  exit 1
fi

mkdir -p "$dir"
cd "$dir"

# Checks out <rev> in <path> from <url>. Some blobs (PDF manuals, test data
# the build never reads) may be absent from a partial mirror: a checkout that
# reports them still leaves every other file in place, so only the files the
# build needs are verified afterwards.
checkout() {
  local url="$1" path="$2" rev="$3"
  if [ ! -d "$path/.git" ] && [ ! -f "$path/.git" ]; then
    git clone -q --no-checkout "$url" "$path"
  fi
  git -C "$path" checkout -q -f "$rev" 2>/dev/null || true
}

checkout "$edk2_test_url" edk2-test "$edk2_test_rev"
checkout "$edk2_url" edk2 "$edk2_tag"
# The only edk2 submodule the SCT build compiles: brotli (BaseTools'
# BrotliCompress and MdeModulePkg's decompressor), at edk2's pinned commit.
for sub in BaseTools/Source/C/BrotliCompress/brotli MdeModulePkg/Library/BrotliCustomDecompressLib/brotli; do
  rev="$(git -C edk2 ls-tree HEAD "$sub" | awk '{print $3}')"
  if [ "$(git -C "edk2/$sub" rev-parse HEAD 2>/dev/null)" != "$rev" ]; then
    rm -rf "edk2/$sub"
    checkout "$brotli_url" "edk2/$sub" "$rev"
  fi
done
# MdePkg's DSC names MipiSysTLib's include directory even when nothing uses it.
mkdir -p edk2/MdePkg/Library/MipiSysTLib/mipisyst/library/include

for f in edk2-test/uefi-sct/SctPkg/build.sh edk2/MdePkg/Include/Uefi.h \
         edk2/BaseTools/Source/C/BrotliCompress/brotli/c/enc/encode.c; do
  [ -f "$f" ] || { echo "build.sh: $dir/$f is missing after checkout" >&2; exit 1; }
done

# SctPkg/build.sh expects a workspace holding edk2/ and SctPkg/ side by side.
mkdir -p ws
ln -sfn ../edk2 ws/edk2
ln -sfn ../edk2-test/uefi-sct/SctPkg ws/SctPkg
cd ws
started=$(date +%s)
SctPkg/build.sh X64 GCC RELEASE
echo "build.sh: built in $(( $(date +%s) - started ))s:" \
  "$dir/ws/Build/UefiSct/RELEASE_GCC/SctPackageX64/X64"
