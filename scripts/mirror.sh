#!/usr/bin/env bash
# The mirror build: copies every ref of a CodeCommit repository to its
# replicas in other regions, then proves the replicas equal the source.
#
# Run by the mirror CodeBuild project (mirror/buildspec.yml) with:
#   SIGNALBOX_MIRROR_SOURCE_REPOSITORY  source repository name
#   SIGNALBOX_MIRROR_SOURCE_REGION      its region
#   SIGNALBOX_MIRROR_TARGETS            space-separated region/repository pairs
# and, for tests against local repositories only:
#   SIGNALBOX_MIRROR_URL_TEMPLATE       default codecommit::{region}://{repository}
#                                       (git-remote-codecommit, authenticated by the build role)
#
# `git push --mirror` creates, moves (also by force) and deletes branches and
# tags so each replica ends with exactly the source's refs. The comparison is
# against the snapshot this run cloned: a push that lands meanwhile starts a
# mirror run of its own. Exit status: 0 when every replica equals the source,
# 1 when any push failed or any replica differs (the differing refs are printed).
set -euo pipefail

source_repository=${SIGNALBOX_MIRROR_SOURCE_REPOSITORY:?SIGNALBOX_MIRROR_SOURCE_REPOSITORY is unset}
source_region=${SIGNALBOX_MIRROR_SOURCE_REGION:?SIGNALBOX_MIRROR_SOURCE_REGION is unset}
targets=${SIGNALBOX_MIRROR_TARGETS:?SIGNALBOX_MIRROR_TARGETS is unset}
template=${SIGNALBOX_MIRROR_URL_TEMPLATE:-'codecommit::{region}://{repository}'}

url() {
  local result=${template//\{region\}/$1}
  printf '%s' "${result//\{repository\}/$2}"
}

# Every ref but HEAD (a symbolic ref push does not carry), sorted.
refs() {
  git ls-remote "$1" | awk -F'\t' '$2 != "HEAD"' | sort -k2
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

source_url=$(url "$source_region" "$source_repository")
echo "cloning $source_region/$source_repository"
git clone --mirror --quiet "$source_url" "$work/source.git" 2>"$work/clone.err" || {
  cat "$work/clone.err" >&2
  echo "FAILED: cannot clone $source_region/$source_repository" >&2
  exit 1
}
refs "$work/source.git" >"$work/source.refs"
echo "source has $(wc -l <"$work/source.refs") refs"

failed=0
for target in $targets; do
  region=${target%%/*}
  repository=${target#*/}
  if [ -z "$region" ] || [ -z "$repository" ] || [ "$region" = "$target" ]; then
    echo "FAILED: target '$target' is not region/repository" >&2
    failed=1
    continue
  fi
  target_url=$(url "$region" "$repository")
  echo "pushing to $region/$repository"
  if [ -s "$work/source.refs" ]; then
    pushed() { git -C "$work/source.git" push --mirror --quiet "$target_url"; }
  else
    # An empty source: `push --mirror` refuses to push nothing, so delete
    # whatever the replica has, ref by ref.
    pushed() {
      local stale
      stale=$(refs "$target_url" | awk -F'\t' '{print ":" $2}') || return 1
      [ -z "$stale" ] || git -C "$work/source.git" push --quiet "$target_url" $stale
    }
  fi
  if ! pushed; then
    echo "FAILED: push to $region/$repository" >&2
    failed=1
    continue
  fi
  if ! refs "$target_url" >"$work/target.refs"; then
    echo "FAILED: cannot list the refs of $region/$repository" >&2
    failed=1
    continue
  fi
  if ! diff -u "$work/source.refs" "$work/target.refs" >"$work/refs.diff"; then
    echo "FAILED: $region/$repository differs from the source:" >&2
    cat "$work/refs.diff" >&2
    failed=1
    continue
  fi
  echo "ok: $region/$repository equals the source"
done
exit "$failed"
