; Inno Setup script: wraps the one-folder Windows build in an installer with a Start-menu
; entry and an uninstaller. Not run in this repository's CI (no Windows there); build with
;   pyinstaller --noconfirm installer\faceapp.spec        (on Windows: makes dist\faceapp\)
;   iscc /DAppVersion=0.1.0 installer\faceapp.iss          (makes dist\faceapp-0.1.0-setup.exe)
;
; Upgrades: the same AppId installs over the previous version. Users' data (database, models)
; lives in %LOCALAPPDATA%\faceapp, outside {app}: neither upgrading nor uninstalling touches it.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{6B1F0D52-3C51-4E0B-9D7A-7F2C1E4A9B31}
AppName=faceapp
AppVersion={#AppVersion}
AppPublisher=faceapp contributors
DefaultDirName={autopf}\faceapp
DefaultGroupName=faceapp
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
LicenseFile=..\LICENSE
OutputDir=..\dist
OutputBaseFilename=faceapp-{#AppVersion}-setup
SetupIconFile=..\resources\faceapp.ico
UninstallDisplayIcon={app}\faceapp.exe
Compression=lzma2
SolidCompression=yes
CloseApplications=yes

[Files]
Source: "..\dist\faceapp\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; An upgrade replaces the application files completely (no stale libraries of the old version).
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{group}\faceapp"; Filename: "{app}\faceapp.exe"
Name: "{group}\Third-party notices"; Filename: "{app}\THIRD-PARTY-NOTICES.txt"
Name: "{group}\Uninstall faceapp"; Filename: "{uninstallexe}"

[Run]
Filename: "{app}\faceapp.exe"; Description: "Start faceapp"; Flags: nowait postinstall skipifsilent
