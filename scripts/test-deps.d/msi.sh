# The Windows installer (packaging/msi, scripts/msi.sh, make package):
# Debian's wixl builds the MSI from WiX v3 XML, and msiinfo (msitools)
# exports its tables for the test that checks them.
have wixl || need+=(wixl)
have msiinfo || need+=(msitools)
