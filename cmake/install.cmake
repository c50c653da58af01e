# `make install` / `cmake --install`: binaries, man pages, docs, example configuration and the
# systemd units. Included from CMakeLists.txt after the targets exist.
include(GNUInstallDirs)

set(MESH_DOCDIR ${CMAKE_INSTALL_FULL_DATADIR}/doc/meshkit)
set(MESH_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(MESH_SYSCONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR})
# Debian 12's packages keep units in /lib/systemd/system (debian/rules says so); a plain install
# under a prefix puts them where systemd also looks for that prefix.
set(MESH_SYSTEMD_UNITDIR "lib/systemd/system"
    CACHE STRING "Where the systemd units go (relative: below the prefix)")

install(TARGETS mesh webapp RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

foreach(unit meshkit-agent meshkit-lb meshkit-pm)
  configure_file(packaging/systemd/${unit}.service.in ${CMAKE_CURRENT_BINARY_DIR}/units/${unit}.service
                 @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/units/${unit}.service DESTINATION ${MESH_SYSTEMD_UNITDIR})
endforeach()

# What the units read: /etc/meshkit.d/*.json (the agent, Consul's keys) and /etc/meshkit/lb.json.
install(FILES packaging/etc/agent.json DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/meshkit.d)
install(FILES packaging/etc/lb.json DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/meshkit)

install(FILES README.md DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/meshkit)
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/meshkit FILES_MATCHING
        PATTERN "*.md")
install(DIRECTORY configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/meshkit/examples)
install(FILES packaging/etc/agent.json packaging/etc/lb.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/meshkit/examples)
install(DIRECTORY scenarios/ DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/meshkit/scenarios)

# Man pages come from the installed binary's own -help (mesh man), written at install time so
# they always match the binary beside them.
install(CODE "
  set(man_dir \"\$ENV{DESTDIR}${CMAKE_INSTALL_FULL_MANDIR}/man1\")
  execute_process(COMMAND \"${CMAKE_CURRENT_BINARY_DIR}/mesh\" man \"\${man_dir}\"
                          \"${CMAKE_CURRENT_BINARY_DIR}/webapp\"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR \"mesh man failed: \${err}\")
  endif()
  message(STATUS \"Man pages: \${out}\")
")
