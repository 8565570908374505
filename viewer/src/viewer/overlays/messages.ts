import { registerMessages } from '../../i18n';

registerMessages({
  'zh-CN': {
    'overlay.series': '序列 {number}', 'overlay.image': '图像 {index}/{total}', 'overlay.instance': '实例号 {number}',
    'overlay.wl': '窗宽 {width} 窗位 {center}', 'overlay.zoom': '缩放 {zoom}×', 'overlay.location': '层面位置 {value} mm',
    'overlay.position': '位置 {value}', 'overlay.thickness': '层厚 {value} mm',
    'overlay.calibration.imager': '注意：仅有探测器像素间距 (Imager Pixel Spacing)，测量值为探测器平面尺寸，未校正放大',
    'overlay.calibration.none': '无像素间距：测量单位为像素 (px)',
    'header.button': '头信息', 'header.button.title': '查看 DICOM 头信息 (D)', 'header.title': 'DICOM 头信息',
    'header.filter': '筛选标签、名称或值', 'header.tag': '标签', 'header.name': '名称', 'header.vr': 'VR', 'header.value': '值',
    'header.bulk': '（大数据）', 'header.binary': '（二进制 {size} 字节）', 'header.private': '私有标签',
    'header.items': '{count} 项', 'header.item': '第 {index} 项', 'header.instance': '实例 {number} · {uid}',
    'header.none': '当前视口没有图像',
  },
  en: {
    'overlay.series': 'Se {number}', 'overlay.image': 'Im {index}/{total}', 'overlay.instance': 'Instance {number}',
    'overlay.wl': 'W {width} L {center}', 'overlay.zoom': 'Zoom {zoom}×', 'overlay.location': 'Loc {value} mm',
    'overlay.position': 'Pos {value}', 'overlay.thickness': 'Thick {value} mm',
    'overlay.calibration.imager': 'Note: only Imager Pixel Spacing — measurements are at the detector plane, not corrected for magnification',
    'overlay.calibration.none': 'No pixel spacing: measurements in pixels (px)',
    'header.button': 'Header', 'header.button.title': 'Show the DICOM header (D)', 'header.title': 'DICOM header',
    'header.filter': 'Filter tag, name or value', 'header.tag': 'Tag', 'header.name': 'Name', 'header.vr': 'VR', 'header.value': 'Value',
    'header.bulk': '(bulk data)', 'header.binary': '(binary, {size} bytes)', 'header.private': 'Private tag',
    'header.items': '{count} items', 'header.item': 'Item {index}', 'header.instance': 'Instance {number} · {uid}',
    'header.none': 'No image in this viewport',
  },
});
