# Installs headers, the module libraries and a CMake package so that an outside
# project can `find_package(Cairn)` and `target_link_libraries(app Cairn::cairn)`.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

add_library(cairn INTERFACE)
target_link_libraries(cairn INTERFACE cairn_api)
if(TARGET cairn_client)
  target_link_libraries(cairn INTERFACE cairn_client)
endif()
add_library(Cairn::cairn ALIAS cairn)

set(_cairn_install_targets cairn)
foreach(t cairn_client cairn_api cairn_shard cairn_datalog cairn_raft cairn_storage cairn_core)
  if(TARGET ${t})
    list(APPEND _cairn_install_targets ${t})
  endif()
endforeach()

install(TARGETS ${_cairn_install_targets} EXPORT CairnTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/cairn DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT CairnTargets NAMESPACE Cairn:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Cairn)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/CairnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/CairnConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Cairn)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/CairnConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/CairnConfig.cmake ${PROJECT_BINARY_DIR}/CairnConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Cairn)
if(TARGET cairn_cli)
  install(TARGETS cairn_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
