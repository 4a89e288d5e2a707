; Inno Setup script for TinyOps (Windows x64). Built by packaging/build.py on Windows when
; `iscc` (Inno Setup 6) is on PATH, or by hand:
;   iscc /DAppVersion=0.1.0 /DSourceDir=build\dist\tinyops /Odist packaging\windows\tinyops.iss
; Per-user install (no admin): %LOCALAPPDATA%\Programs\TinyOps; adds tinyops to the user PATH.
; USB serial on Windows needs no udev step: the board's driver (CDC ACM is built in; CP210x,
; CH340, FTDI come from Windows Update or the vendor) gives a COM port every user may open.
; NOT TESTED HERE: the project's CI runs on Linux; .github/workflows/installers.yml builds
; this on a hosted windows-latest runner.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\build\dist\tinyops"
#endif

[Setup]
AppId={{6F1D2C1E-4B7A-4F0E-9C55-7A1D6C0B7E10}
AppName=TinyOps
AppVersion={#AppVersion}
AppPublisher=TinyOps
DefaultDirName={localappdata}\Programs\TinyOps
DefaultGroupName=TinyOps
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputBaseFilename=tinyops-{#AppVersion}-setup
Compression=lzma2/max
SolidCompression=yes
ChangesEnvironment=yes
UninstallDisplayIcon={app}\tinyops.exe
WizardStyle=modern

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: recursesubdirs createallsubdirs ignoreversion

[Icons]
Name: "{group}\TinyOps"; Filename: "{app}\tinyops.exe"; Parameters: "gui"
Name: "{userdesktop}\TinyOps"; Filename: "{app}\tinyops.exe"; Parameters: "gui"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked
Name: "addtopath"; Description: "Add tinyops to PATH (command line)"

[Registry]
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; \
  ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\tinyops.exe"; Parameters: "gui"; Description: "Start TinyOps"; \
  Flags: nowait postinstall skipifsilent

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Paths: string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Paths) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Lowercase(Dir) + ';', ';' + Lowercase(Paths) + ';') = 0;
end;
