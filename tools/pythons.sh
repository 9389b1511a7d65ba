# Sourced by the scripts that run or build for several Pythons: find_python VERSION prints the path
# of an interpreter for that version (PATH first, then pyenv's versions), or nothing.
# shellcheck shell=bash

find_python() {
    local version=$1 candidate
    if candidate=$(command -v "python$version") && "$candidate" -c "" 2>/dev/null; then
        echo "$candidate"
    elif command -v pyenv >/dev/null; then
        ls -d "$(pyenv root)/versions/$version".*/bin/python 2>/dev/null | sort -V | tail -n 1
    fi
}
