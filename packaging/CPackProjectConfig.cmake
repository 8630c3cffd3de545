# Read by cpack before each generator runs (CPACK_PROJECT_CONFIG_FILE).
if(CPACK_GENERATOR STREQUAL "RPM" AND NOT RPM_EXECUTABLE)
  # CPackRPM (CMake 3.25) probes `${RPM_EXECUTABLE} --suggests` to decide whether weak dependencies (Suggests,
  # Recommends) are supported, but never sets RPM_EXECUTABLE, so the probe fails and the tags are dropped.
  find_program(RPM_EXECUTABLE rpm)
endif()
if(CPACK_GENERATOR STREQUAL "DEB")
  # Each component's CPACK_DEBIAN_<COMPONENT>_DESCRIPTION starts with its own synopsis line. CPackDeb would put the
  # project-wide summary in front of it unless the summary is CPack's default, so reset it to that.
  set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${CPACK_DEFAULT_PACKAGE_DESCRIPTION_SUMMARY}")
endif()
