# `cmake --install` and the Debian package (CPack, DEB). A relocatable tree:
#   bin/1mcp
#   lib/1mcp/1mcp-js-worker, lib/1mcp/1mcp-py-worker, lib/1mcp/esbuild
#   lib/systemd/system/1mcp.service
#   share/doc/1mcp/README.md, index.d.ts
# 1mcp finds the workers and esbuild from its own path (/proc/self/exe/../../lib/1mcp), so the
# tree works wherever it is put; in a build tree they are next to the binary (src/cli/main.cc).
set(ONEMCP_ESBUILD_BINARY ${PROJECT_SOURCE_DIR}/node_modules/@esbuild/linux-x64/bin/esbuild
    CACHE FILEPATH "The esbuild binary installed into lib/1mcp (scripts/setup.sh puts it in node_modules)")

install(TARGETS 1mcp RUNTIME DESTINATION bin)
install(TARGETS 1mcp-js-worker 1mcp-py-worker RUNTIME DESTINATION lib/1mcp)
install(PROGRAMS ${ONEMCP_ESBUILD_BINARY} DESTINATION lib/1mcp)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/types/index.d.ts
        DESTINATION share/doc/1mcp)
# The systemd unit as it is: it names /usr/bin/1mcp, the Debian package's path (another prefix
# edits it, README "Operations"). Installed, not enabled: `systemctl enable --now 1mcp` starts it.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/1mcp.service DESTINATION lib/systemd/system)

# cpack -G DEB --config build/CPackConfig.cmake: the same tree under /usr. The shared libraries
# the binaries link become Depends through dpkg-shlibdeps (dpkg-dev); the packages a run needs
# without linking them are listed here. No maintainer scripts: nothing runs at install time.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME 1mcp)
set(CPACK_PACKAGE_VENDOR 1mcp)
set(CPACK_PACKAGE_CONTACT "1mcp maintainers <1mcp@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "MCP server that runs untrusted JavaScript and Python in a Linux-kernel sandbox")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# python3.11: its standard library and the interpreter pip dependencies are installed with;
# numpy: importable in every run_py (Debian's data stack, as scripts/setup.sh installs it).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "python3.11, python3-numpy")
# Importable in run_py when present; npm and pip install a config's dependencies.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3-pandas, python3-matplotlib, python3-requests, python3-pip, npm")
include(CPack)
